/*
 * The fast path of sim/ftrace.py's parser (TraceReader._parse_batches), in C.
 *
 * A Scanner reads one line of an ftrace kmem trace and returns the event tuple the
 * Python fast path builds from it, or None where that path would do anything else:
 * look a tail up that is not cached yet, take the careful path, or raise. The caller
 * then runs the Python code on the line, so every line that is not plainly the common
 * shape is read by the one Python definition. The line is split as str.split(None, 7)
 * splits it; the time and the pfn are read only when their text is plain digits (the
 * subset of what float() and int(x, 16) accept on which both give the same value).
 *
 * Built with the mypyc modules (setup.py) and used only when they run compiled
 * (sim/native.py): the pure-Python build, which the test suite also runs, never loads it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define NR_FIELDS 8 /* str.split(None, 7) */
#define MEMO_SLOTS 4096 /* a power of 2; filled to half at most */

/* A memo of one of the parser's dicts, keyed by the key's text: the same value without
   making the key's str object each time. The dicts only ever gain keys, and a key's
   value never changes, so an entry copied from one stays true. */
typedef struct {
    uint64_t hash;
    Py_ssize_t len;
    char *text;
    PyObject *value;
} MemoEntry;

typedef struct {
    MemoEntry *slots; /* MEMO_SLOTS entries, allocated at the first insert */
    Py_ssize_t used;
} Memo;

typedef struct {
    PyObject_HEAD
    PyObject *kinds;      /* dict: "kmalloc:" -> kind */
    PyObject *cpus;       /* dict: "[001]" -> cpu */
    PyObject *tails;      /* list, per kind, of dicts: tail -> parsed tuple */
    PyObject *kfree_tail; /* the tuple of a kfree without a tail */
    PyObject *null_page;  /* "page=0000000000000000" */
    PyObject *empty;      /* "" */
    PyObject *minus_one;
    PyObject *zero;
    Memo kind_memo, cpu_memo, tail_memo[7];
} Scanner;

/* Py_UNICODE_ISSPACE for the ASCII range: what str.split() splits at. */
static char is_space[128];

static uint64_t
text_hash(const char *p, Py_ssize_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 29);
}

static void
memo_clear(Memo *memo)
{
    if (!memo->slots)
        return;
    for (Py_ssize_t i = 0; i < MEMO_SLOTS; i++) {
        PyMem_Free(memo->slots[i].text);
        Py_XDECREF(memo->slots[i].value);
    }
    PyMem_Free(memo->slots);
    memo->slots = NULL;
    memo->used = 0;
}

/* The slot of p[0:n]: its entry, or the empty slot where it would go. */
static MemoEntry *
memo_slot(Memo *memo, const char *p, Py_ssize_t n, uint64_t h)
{
    size_t i = (size_t)h & (MEMO_SLOTS - 1);
    for (;;) {
        MemoEntry *e = &memo->slots[i];
        if (!e->value || (e->hash == h && e->len == n && memcmp(e->text, p, n) == 0))
            return e;
        i = (i + 1) & (MEMO_SLOTS - 1);
    }
}

/* dict[p[0:n]], borrowed; NULL (no error set) when missing. Found in the memo, or in
   the dict and then remembered. */
static PyObject *
memo_lookup(Memo *memo, PyObject *dict, const char *p, Py_ssize_t n)
{
    uint64_t h = text_hash(p, n);
    MemoEntry *e = NULL;
    if (memo->slots) {
        e = memo_slot(memo, p, n, h);
        if (e->value)
            return e->value;
    }
    PyObject *key = PyUnicode_FromKindAndData(PyUnicode_1BYTE_KIND, p, n);
    if (!key)
        return NULL;
    PyObject *value = PyDict_GetItemWithError(dict, key);
    Py_DECREF(key);
    if (!value || memo->used >= MEMO_SLOTS / 2)
        return value;
    if (!memo->slots) {
        memo->slots = PyMem_Calloc(MEMO_SLOTS, sizeof(MemoEntry));
        if (!memo->slots)
            return value; /* no memo, the dict still answers */
        e = memo_slot(memo, p, n, h);
    }
    char *text = PyMem_Malloc(n ? n : 1);
    if (!text)
        return value;
    memcpy(text, p, n);
    e->hash = h;
    e->len = n;
    e->text = text;
    Py_INCREF(value);
    e->value = value;
    memo->used++;
    return value;
}

static int
scanner_init(Scanner *self, PyObject *args, PyObject *kwds)
{
    PyObject *kinds, *cpus, *tails, *kfree_tail, *null_page;
    static char *kwlist[] = {"kinds", "cpus", "tails", "kfree_tail", "null_page", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!O!U", kwlist, &PyDict_Type, &kinds,
                                     &PyDict_Type, &cpus, &PyList_Type, &tails,
                                     &PyTuple_Type, &kfree_tail, &null_page))
        return -1;
    memo_clear(&self->kind_memo); /* new tables: nothing remembered holds */
    memo_clear(&self->cpu_memo);
    for (int k = 0; k < 7; k++)
        memo_clear(&self->tail_memo[k]);
    Py_INCREF(kinds);
    Py_XSETREF(self->kinds, kinds);
    Py_INCREF(cpus);
    Py_XSETREF(self->cpus, cpus);
    Py_INCREF(tails);
    Py_XSETREF(self->tails, tails);
    Py_INCREF(kfree_tail);
    Py_XSETREF(self->kfree_tail, kfree_tail);
    Py_INCREF(null_page);
    Py_XSETREF(self->null_page, null_page);
    if (!self->empty && !(self->empty = PyUnicode_FromStringAndSize("", 0)))
        return -1;
    if (!self->minus_one && !(self->minus_one = PyLong_FromLong(-1)))
        return -1;
    if (!self->zero && !(self->zero = PyLong_FromLong(0)))
        return -1;
    return 0;
}

static void
scanner_dealloc(Scanner *self)
{
    Py_XDECREF(self->kinds);
    Py_XDECREF(self->cpus);
    Py_XDECREF(self->tails);
    Py_XDECREF(self->kfree_tail);
    Py_XDECREF(self->null_page);
    Py_XDECREF(self->empty);
    Py_XDECREF(self->minus_one);
    Py_XDECREF(self->zero);
    memo_clear(&self->kind_memo);
    memo_clear(&self->cpu_memo);
    for (int k = 0; k < 7; k++)
        memo_clear(&self->tail_memo[k]);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The str of p[0:n], text known to be ASCII (a slice of an ASCII line). */
static PyObject *
substr(const char *p, Py_ssize_t n)
{
    PyObject *s = PyUnicode_New(n, 127);
    if (s)
        memcpy(PyUnicode_1BYTE_DATA(s), p, n);
    return s;
}

/* Exact powers of ten: 10^k is a double exactly for k <= 22. */
static const double exact_tens[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* float(text) for text that is digits[.digits], else -1 (no error set).
   Up to 15 digits in all, the value is digits / 10^fraction digits, both exact doubles,
   and one IEEE division rounds it correctly, as float() does: Clinger's fast path, which
   float()'s own strtod takes for it too. Longer text goes to PyOS_string_to_double
   (float()'s own), which sets the x87 control word each call: a tenth of the time. */
static int
read_time(const char *p, Py_ssize_t n, double *out)
{
    char buf[64];
    Py_ssize_t i = 0, digits = 0, frac = 0;
    uint64_t mantissa = 0;
    if (n <= 0 || n >= (Py_ssize_t)sizeof buf)
        return -1;
    while (i < n && p[i] >= '0' && p[i] <= '9')
        mantissa = mantissa * 10 + (uint64_t)(p[i++] - '0'), digits++;
    if (!digits)
        return -1;
    if (i < n) {
        if (p[i] != '.')
            return -1;
        i++;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            mantissa = mantissa * 10 + (uint64_t)(p[i++] - '0'), frac++;
        if (!frac || i != n)
            return -1;
    }
    if (digits + frac <= 15) { /* mantissa < 10^15 < 2^53: exact */
        *out = (double)mantissa / exact_tens[frac];
        return 0;
    }
    memcpy(buf, p, n);
    buf[n] = '\0';
    char *end = NULL;
    double value = PyOS_string_to_double(buf, &end, NULL);
    if (value == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    if (end != buf + n)
        return -1;
    *out = value;
    return 0;
}

/* int(text, 16) for 1 to 15 hex digits, else -1. */
static long long
read_hex(const char *p, Py_ssize_t n)
{
    long long value = 0;
    if (n <= 0 || n > 15)
        return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = p[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        value = value * 16 + d;
    }
    return value;
}

static PyObject *
give(PyObject *tuple, Py_ssize_t i, PyObject *value)
{
    Py_INCREF(value);
    PyTuple_SET_ITEM(tuple, i, value);
    return value;
}

/* Scanner.line(line, lineno): the event tuple, or None (see the file's comment). */
static PyObject *
scanner_line(Scanner *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "line(line: str, lineno: int)");
        return NULL;
    }
    PyObject *line = args[0], *lineno = args[1];
    if (!PyUnicode_IS_ASCII(line))
        Py_RETURN_NONE;
    const char *s = (const char *)PyUnicode_1BYTE_DATA(line);
    Py_ssize_t n = PyUnicode_GET_LENGTH(line);
    Py_ssize_t start[NR_FIELDS], len[NR_FIELDS];
    Py_ssize_t i = 0, nr = 0;
    while (nr < NR_FIELDS) {
        while (i < n && is_space[(unsigned char)s[i]])
            i++;
        if (i >= n)
            break;
        start[nr] = i;
        if (nr == NR_FIELDS - 1) { /* the rest, trailing whitespace included */
            len[nr++] = n - i;
            break;
        }
        while (i < n && !is_space[(unsigned char)s[i]])
            i++;
        len[nr] = i - start[nr];
        nr++;
    }
    if (nr < 7)
        Py_RETURN_NONE; /* t[6] is an IndexError: the careful path */
    PyObject *kind_obj = memo_lookup(&self->kind_memo, self->kinds, s + start[4], len[4]);
    if (!kind_obj)
        goto none_or_error;
    PyObject *cpu_obj = memo_lookup(&self->cpu_memo, self->cpus, s + start[1], len[1]);
    if (!cpu_obj)
        goto none_or_error;
    long kind = PyLong_AsLong(kind_obj);
    if (kind == -1 && PyErr_Occurred())
        return NULL;
    if (kind < 0 || kind >= 7)
        Py_RETURN_NONE;
    double ts;
    if (read_time(s + start[3], len[3] - 1, &ts) < 0)
        Py_RETURN_NONE;
    const char *key = s + start[6];
    Py_ssize_t key_len = len[6];
    PyObject *tails = PyList_GetItem(self->tails, kind);
    if (!tails)
        return NULL;
    PyObject *v;
    PyObject *ev;
    if (kind < 4) {
        if (key_len <= 4 || memcmp(key, "ptr=", 4) != 0)
            Py_RETURN_NONE;
        if (nr == 8) {
            v = memo_lookup(&self->tail_memo[kind], tails, s + start[7], len[7]);
            if (!v)
                goto none_or_error;
        } else if (kind == 3) {
            v = self->kfree_tail;
        } else {
            Py_RETURN_NONE;
        }
        if (!PyTuple_Check(v) || PyTuple_GET_SIZE(v) != 5)
            Py_RETURN_NONE;
        PyObject *ptr = substr(key + 4, key_len - 4);
        if (!ptr)
            return NULL;
        PyObject *ts_obj = PyFloat_FromDouble(ts);
        if (!ts_obj || !(ev = PyTuple_New(13))) {
            Py_DECREF(ptr);
            Py_XDECREF(ts_obj);
            return NULL;
        }
        /* (ts, cpu, kind, ptr, -1, name, bytes_req, bytes_alloc, gfp, 0, 0, accounted,
            lineno) */
        PyTuple_SET_ITEM(ev, 0, ts_obj);
        give(ev, 1, cpu_obj);
        give(ev, 2, kind_obj);
        PyTuple_SET_ITEM(ev, 3, ptr);
        give(ev, 4, self->minus_one);
        give(ev, 5, PyTuple_GET_ITEM(v, 0));
        give(ev, 6, PyTuple_GET_ITEM(v, 1));
        give(ev, 7, PyTuple_GET_ITEM(v, 2));
        give(ev, 8, PyTuple_GET_ITEM(v, 3));
        give(ev, 9, self->zero);
        give(ev, 10, self->zero);
        give(ev, 11, PyTuple_GET_ITEM(v, 4));
        give(ev, 12, lineno);
        return ev;
    }
    if (nr != 8 || key_len < 6 || memcmp(key, "pfn=0x", 6) != 0)
        Py_RETURN_NONE;
    Py_ssize_t null_len = PyUnicode_GET_LENGTH(self->null_page);
    if (len[5] == null_len && PyUnicode_IS_ASCII(self->null_page)
        && memcmp(s + start[5], PyUnicode_1BYTE_DATA(self->null_page), null_len) == 0)
        Py_RETURN_NONE;
    long long pfn = read_hex(key + 6, key_len - 6);
    if (pfn < 0)
        Py_RETURN_NONE;
    v = memo_lookup(&self->tail_memo[kind], tails, s + start[7], len[7]);
    if (!v)
        goto none_or_error;
    if (!PyTuple_Check(v) || PyTuple_GET_SIZE(v) != 3)
        Py_RETURN_NONE;
    PyObject *pfn_obj = PyLong_FromLongLong(pfn);
    PyObject *ts_obj = PyFloat_FromDouble(ts);
    if (!pfn_obj || !ts_obj || !(ev = PyTuple_New(13))) {
        Py_XDECREF(pfn_obj);
        Py_XDECREF(ts_obj);
        return NULL;
    }
    /* (ts, cpu, kind, "", pfn, None, 0, 0, gfp, order, migratetype, False, lineno) */
    PyTuple_SET_ITEM(ev, 0, ts_obj);
    give(ev, 1, cpu_obj);
    give(ev, 2, kind_obj);
    give(ev, 3, self->empty);
    PyTuple_SET_ITEM(ev, 4, pfn_obj);
    give(ev, 5, Py_None);
    give(ev, 6, self->zero);
    give(ev, 7, self->zero);
    give(ev, 8, PyTuple_GET_ITEM(v, 2));
    give(ev, 9, PyTuple_GET_ITEM(v, 0));
    give(ev, 10, PyTuple_GET_ITEM(v, 1));
    give(ev, 11, Py_False);
    give(ev, 12, lineno);
    return ev;

none_or_error:
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef scanner_methods[] = {
    {"line", (PyCFunction)(void (*)(void))scanner_line, METH_FASTCALL,
     "line(line, lineno): the event tuple of a plain kmem line, or None."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sim._ftrace_scan.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Scanner(kinds, cpus, tails, kfree_tail, null_page): the parser's fast path.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)scanner_init,
    .tp_dealloc = (destructor)scanner_dealloc,
    .tp_methods = scanner_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "sim._ftrace_scan",
    "The fast path of sim/ftrace.py's trace parser, in C.", -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__ftrace_scan(void)
{
    const char spaces[] = {'\t', '\n', '\x0b', '\x0c', '\r', '\x1c', '\x1d', '\x1e', '\x1f',
                           ' '};
    for (size_t k = 0; k < sizeof spaces; k++)
        is_space[(unsigned char)spaces[k]] = 1;
    if (PyType_Ready(&ScannerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(&ScannerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
