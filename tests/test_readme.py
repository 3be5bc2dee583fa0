"""Every Python example in the README runs, and the README's first command is real."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has Python examples"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})


def test_readme_opens_with_the_install_and_test_commands():
    text = README.read_text()
    commands = re.search(r"```sh\n(.*?)```", text, flags=re.S).group(1).splitlines()
    assert commands[0].endswith("pip install -e . && fragsim run configs/quickstart.yaml")
    assert (README.parent / "configs/quickstart.yaml").exists()
    assert commands[1].endswith("pip install -e '.[test]' && python -m pytest")
