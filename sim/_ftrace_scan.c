/*
 * The fast path of sim/ftrace.py's parser (TraceReader._parse_batches), in C.
 *
 * A Scanner reads the lines of a chunk of a kmem trace's bytes and takes each line of
 * the common shape whole: it reads the fields as the Python code does, makes the
 * loop's checks (the timestamp, the pairing of pointers) and writes the event as a
 * 32-byte record. It stops at the first line it cannot take whole and the Python code
 * reads that one (``_event``) and hands its event back to be checked (``accept``), so
 * every line that is not plainly the common shape is read by the one Python
 * definition. A line is split as str.split(None, 7) splits it; the time and the pfn are
 * read only when their text is plain digits (the subset of what float() and int(x, 16)
 * accept on which both give the same value); a line with a byte outside ASCII goes to
 * Python, which decodes it. A Decoder, in the process that replays, makes the event
 * tuples from the records: the tuples the Python code makes.
 *
 * Built with the mypyc modules (setup.py) and used only when they run compiled
 * (sim/native.py): the pure-Python build, which the test suite also runs, never loads it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <stdint.h>
#include <math.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define NOINLINE __attribute__((noinline))
#else
#define ALWAYS_INLINE inline
#define NOINLINE
#endif

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
    long ival;   /* the value as a C long (the kinds' and CPUs' ints), else LONG_MIN */
    int32_t tid; /* a tail's number in Scanner.tail_list; -1 in the other memos */
} MemoEntry;

typedef struct {
    MemoEntry *slots; /* MEMO_SLOTS entries, allocated at the first insert */
    Py_ssize_t used;
    PyObject *numbered; /* a list that numbers the values (the tails), or NULL */
} Memo;

typedef struct {
    uint64_t *keys;
    int64_t *values;
    uint8_t *state; /* 0 empty, 1 full, 2 removed */
    size_t cap, used, removed;
} PtrTable;

typedef struct Record Record;

typedef struct {
    PyObject_HEAD
    PyObject *kinds;      /* dict: "kmalloc:" -> kind */
    PyObject *cpus;       /* dict: "[001]" -> cpu */
    PyObject *tails;      /* list, per kind, of dicts: tail -> parsed tuple */
    PyObject *kfree_tail; /* the tuple of a kfree without a tail */
    PyObject *null_page;  /* "page=0000000000000000" */
    Memo kind_memo, cpu_memo, tail_memo[7];
    /* Scanner.chunk and Scanner.accept: the loop's state. */
    PyObject *bad_allocs; /* dict: ptr -> line of its bad allocation (the parser's) */
    PyObject *other_ptrs; /* ptrs of any other text -> line */
    PtrTable ptrs;
    double top, floor, tolerance, low, high;
    long long counts[7];
    PyObject *tail_list; /* the tails by number, kfree_tail first */
    Py_ssize_t tails_sent;
    PyObject *objects; /* events recorded as objects since the last take */
    Record *recs;
    size_t nrec, rec_cap;
} Scanner;

/* Py_UNICODE_ISSPACE for the ASCII range: what str.split() splits at. */
static char is_space[128];

/* The bytes of p[0:n], 0 < n < 8, in a word, without a call to memcpy of a variable
   length: two loads of 4 that overlap, or the first, middle and last bytes. With n
   known, the word gives the bytes back (every byte is in it). */
static inline uint64_t
small_word(const char *p, Py_ssize_t n)
{
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + n - 4, 4);
        return (uint64_t)lo | (uint64_t)hi << 32;
    }
    if (n > 0)
        return (uint64_t)(unsigned char)p[0] | (uint64_t)(unsigned char)p[n >> 1] << 8
               | (uint64_t)(unsigned char)p[n - 1] << 16;
    return 0;
}

static ALWAYS_INLINE uint64_t
text_hash(const char *p, Py_ssize_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    uint64_t w;
    if (n < 8) {
        w = small_word(p, n);
    } else {
        const char *last = p + n - 8; /* the last word, overlapping the one before */
        while (p < last) {
            memcpy(&w, p, 8);
            h = (h ^ w) * 0xFF51AFD7ED558CCDull;
            h ^= h >> 32;
            p += 8;
        }
        memcpy(&w, last, 8);
    }
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 29);
}

/* a[0:n] == b[0:n]: a short text (a CPU field, most event names) by words that may
   overlap, without a call; a long one (a tail) by memcmp. */
static inline int
same_text(const char *a, const char *b, Py_ssize_t n)
{
    if (n > 16)
        return memcmp(a, b, (size_t)n) == 0;
    if (n < 8)
        return small_word(a, n) == small_word(b, n);
    uint64_t x0, y0, x1, y1;
    memcpy(&x0, a, 8);
    memcpy(&y0, b, 8);
    memcpy(&x1, a + n - 8, 8);
    memcpy(&y1, b + n - 8, 8);
    return x0 == y0 && x1 == y1;
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
static ALWAYS_INLINE MemoEntry *
memo_slot(Memo *memo, const char *p, Py_ssize_t n, uint64_t h)
{
    size_t i = (size_t)h & (MEMO_SLOTS - 1);
    for (;;) {
        MemoEntry *e = &memo->slots[i];
        if (!e->value || (e->hash == h && e->len == n && same_text(e->text, p, n)))
            return e;
        i = (i + 1) & (MEMO_SLOTS - 1);
    }
}

static PyObject *memo_miss(Memo *memo, PyObject *dict, const char *p, Py_ssize_t n,
                           uint64_t h, MemoEntry *e, MemoEntry **entry);

/* dict[p[0:n]], borrowed; NULL (no error set) when missing. Found in the memo (inlined:
   three look-ups a line), or in the dict and then remembered (and numbered, in a memo
   that numbers). *entry is the value's memo entry, or NULL when the memo is full. */
static ALWAYS_INLINE PyObject *
memo_lookup(Memo *memo, PyObject *dict, const char *p, Py_ssize_t n, MemoEntry **entry)
{
    uint64_t h = text_hash(p, n);
    MemoEntry *e = NULL;
    if (memo->slots) {
        e = memo_slot(memo, p, n, h);
        if (e->value) {
            *entry = e;
            return e->value;
        }
    }
    return memo_miss(memo, dict, p, n, h, e, entry);
}

static NOINLINE PyObject *
memo_miss(Memo *memo, PyObject *dict, const char *p, Py_ssize_t n, uint64_t h, MemoEntry *e,
          MemoEntry **entry)
{
    *entry = NULL;
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
    int32_t tid = -1;
    if (memo->numbered) {
        Py_ssize_t nt = PyList_GET_SIZE(memo->numbered);
        if (nt >= INT32_MAX || PyList_Append(memo->numbered, value) < 0) {
            PyErr_Clear();
            return value; /* not numbered: its lines go to the Python code */
        }
        tid = (int32_t)nt;
    }
    char *text = PyMem_Malloc(n ? n : 1);
    if (!text)
        return value;
    memcpy(text, p, n);
    e->hash = h;
    e->len = n;
    e->text = text;
    long ival = LONG_MIN;
    if (PyLong_Check(value)) {
        ival = PyLong_AsLong(value);
        if (ival == -1 && PyErr_Occurred()) {
            PyErr_Clear(); /* too large: its users convert it themselves, and fail */
            ival = LONG_MIN;
        }
    }
    Py_INCREF(value);
    e->value = value;
    e->ival = ival;
    e->tid = tid;
    memo->used++;
    *entry = e;
    return value;
}

static void ptrs_free(PtrTable *t);

static int
scanner_init(Scanner *self, PyObject *args, PyObject *kwds)
{
    PyObject *kinds, *cpus, *tails, *kfree_tail, *null_page, *bad_allocs = NULL;
    double tolerance = 0.0;
    static char *kwlist[] = {"kinds", "cpus", "tails", "kfree_tail", "null_page",
                             "bad_allocs", "tolerance", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!O!U|O!d", kwlist, &PyDict_Type,
                                     &kinds, &PyDict_Type, &cpus, &PyList_Type, &tails,
                                     &PyTuple_Type, &kfree_tail, &null_page, &PyDict_Type,
                                     &bad_allocs, &tolerance))
        return -1;
    if (self->kinds) {
        PyErr_SetString(PyExc_RuntimeError, "a Scanner is initialised once");
        return -1;
    }
    if (!bad_allocs && !(bad_allocs = PyDict_New()))
        return -1;
    else
        Py_INCREF(bad_allocs);
    self->bad_allocs = bad_allocs;
    Py_INCREF(kinds);
    self->kinds = kinds;
    Py_INCREF(cpus);
    self->cpus = cpus;
    Py_INCREF(tails);
    self->tails = tails;
    Py_INCREF(kfree_tail);
    self->kfree_tail = kfree_tail;
    Py_INCREF(null_page);
    self->null_page = null_page;
    self->tolerance = tolerance;
    self->top = -Py_HUGE_VAL;
    self->floor = 0.0;
    self->low = Py_HUGE_VAL;
    self->high = -Py_HUGE_VAL;
    if (!(self->other_ptrs = PyDict_New()) || !(self->objects = PyList_New(0))
        || !(self->tail_list = PyList_New(0)))
        return -1;
    if (PyList_Append(self->tail_list, kfree_tail) < 0) /* number 0 */
        return -1;
    for (int k = 0; k < 7; k++)
        self->tail_memo[k].numbered = self->tail_list;
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
    Py_XDECREF(self->bad_allocs);
    Py_XDECREF(self->other_ptrs);
    Py_XDECREF(self->objects);
    Py_XDECREF(self->tail_list);
    memo_clear(&self->kind_memo);
    memo_clear(&self->cpu_memo);
    for (int k = 0; k < 7; k++)
        memo_clear(&self->tail_memo[k]);
    ptrs_free(&self->ptrs);
    PyMem_Free(self->recs);
    Py_TYPE(self)->tp_free((PyObject *)self);
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

/* One line read by the fast path: what the event tuple is made of. */
typedef struct {
    long kind;
    PyObject *kind_obj; /* borrowed, from the tables */
    PyObject *cpu_obj;
    MemoEntry *cpu_entry; /* cpu_obj's memo entry (its C value), or NULL */
    double ts;
    const char *ptr; /* kinds 0-3: the text after "ptr=" */
    Py_ssize_t ptr_len;
    long long pfn;  /* kinds 4-6 */
    PyObject *tail; /* the parsed tail: 5 items (kinds 0-3) or 3 (kinds 4-6) */
    int32_t tid;    /* its number in the scanner's tail list, -1 when not numbered */
} Fields;

/* The end of the field that starts at s[i] (the first space of is_space at or after i,
   or n) in an ASCII line. Eight bytes at a time where it can: every byte of is_space is
   below 0x21, and the lowest byte below 0x21 of a word of ASCII bytes is the lowest
   byte flagged by (w - 0x21..21) & ~w & 0x80..80 (a borrow only runs upwards from a
   flagged byte), so a word without a flag holds no space; a flagged byte that is not a
   space (another control character) is stepped over. */
static Py_ssize_t
field_end(const char *s, Py_ssize_t i, Py_ssize_t n)
{
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (i + 8 <= n) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        uint64_t low = (w - 0x2121212121212121ull) & ~w & 0x8080808080808080ull;
        if (!low) {
            i += 8;
            continue;
        }
        i += __builtin_ctzll(low) >> 3;
        if (is_space[(unsigned char)s[i]])
            return i;
        i++;
    }
#endif
    while (i < n && !is_space[(unsigned char)s[i]])
        i++;
    return i;
}

/* Read line s[0:n] as the Python fast path would: 1 with *f filled, 0 where that path
   would do anything else (the line goes to the Python code), -1 on an error. */
static int
read_fields(Scanner *self, const char *s, Py_ssize_t n, Fields *f)
{
    Py_ssize_t start[NR_FIELDS], len[NR_FIELDS];
    Py_ssize_t i = 0, nr = 0;
    while (nr < NR_FIELDS) {
        /* Runs of blanks (the padding of the task and CPU columns) eight at a time,
           up to the first byte that is not ' '; then the exact test. */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            uint64_t x = w ^ 0x2020202020202020ull;
            if (x) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                i += __builtin_ctzll(x) >> 3;
#endif
                break;
            }
            i += 8;
        }
        while (i < n && is_space[(unsigned char)s[i]])
            i++;
        if (i >= n)
            break;
        start[nr] = i;
        if (nr == NR_FIELDS - 1) { /* the rest, trailing whitespace included */
            len[nr++] = n - i;
            break;
        }
        i = field_end(s, i, n);
        len[nr] = i - start[nr];
        nr++;
    }
    if (nr < 7)
        return 0; /* t[6] is an IndexError: the careful path */
    MemoEntry *e, *kind_entry, *cpu_entry;
    PyObject *kind_obj = memo_lookup(&self->kind_memo, self->kinds, s + start[4], len[4],
                                     &kind_entry);
    if (!kind_obj)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *cpu_obj = memo_lookup(&self->cpu_memo, self->cpus, s + start[1], len[1],
                                    &cpu_entry);
    if (!cpu_obj)
        return PyErr_Occurred() ? -1 : 0;
    long kind = kind_entry && kind_entry->ival != LONG_MIN ? kind_entry->ival
                                                           : PyLong_AsLong(kind_obj);
    if (kind == -1 && PyErr_Occurred())
        return -1;
    if (kind < 0 || kind >= 7)
        return 0;
    if (read_time(s + start[3], len[3] - 1, &f->ts) < 0)
        return 0;
    const char *key = s + start[6];
    Py_ssize_t key_len = len[6];
    PyObject *tails = PyList_GetItem(self->tails, kind);
    if (!tails)
        return -1;
    f->kind = kind;
    f->kind_obj = kind_obj;
    f->cpu_obj = cpu_obj;
    f->cpu_entry = cpu_entry;
    if (kind < 4) {
        if (key_len <= 4 || memcmp(key, "ptr=", 4) != 0)
            return 0;
        if (nr == 8) {
            f->tail = memo_lookup(&self->tail_memo[kind], tails, s + start[7], len[7], &e);
            if (!f->tail)
                return PyErr_Occurred() ? -1 : 0;
            f->tid = e ? e->tid : -1;
        } else if (kind == 3) {
            f->tail = self->kfree_tail;
            f->tid = 0;
        } else {
            return 0;
        }
        if (!PyTuple_Check(f->tail) || PyTuple_GET_SIZE(f->tail) != 5)
            return 0;
        f->ptr = key + 4;
        f->ptr_len = key_len - 4;
        f->pfn = -1;
        return 1;
    }
    if (nr != 8 || key_len < 6 || memcmp(key, "pfn=0x", 6) != 0)
        return 0;
    Py_ssize_t null_len = PyUnicode_GET_LENGTH(self->null_page);
    if (len[5] == null_len && PyUnicode_IS_ASCII(self->null_page)
        && memcmp(s + start[5], PyUnicode_1BYTE_DATA(self->null_page), null_len) == 0)
        return 0;
    f->pfn = read_hex(key + 6, key_len - 6);
    if (f->pfn < 0)
        return 0;
    f->tail = memo_lookup(&self->tail_memo[kind], tails, s + start[7], len[7], &e);
    if (!f->tail)
        return PyErr_Occurred() ? -1 : 0;
    f->tid = e ? e->tid : -1;
    if (!PyTuple_Check(f->tail) || PyTuple_GET_SIZE(f->tail) != 3)
        return 0;
    f->ptr = NULL;
    f->ptr_len = 0;
    return 1;
}

/* ------------------------------------------------------------------ whole chunks
 *
 * Scanner.chunk reads the lines of a chunk of the file's bytes itself, with what the
 * Python loop does after reading a line (the timestamp's checks, the pairing of
 * pointers, the counts), and writes each event as a 32-byte record instead of a tuple.
 * It stops at the first line it cannot take whole: one that is not plain ASCII, not
 * the fast path's shape, or bad by a check; the Python code reads that one line and
 * hands its event to Scanner.accept, which checks it as the loop does and records it
 * (as an object). Scanner.take returns the chunk's records, objects and new tails; a
 * Decoder (in the process that replays) makes the event tuples from them, the very
 * tuples Scanner.line and the Python code make.
 */

/* ptr -> line of its allocation (> 0) or of its free (< 0), as the Python parser's dict
   ptrs. A pointer printed as %p on 64 bits, 16 lowercase hex digits, is keyed by its
   value (the text is the value's only spelling); any other text by a dict. */
enum { REC_EVENT = 0, REC_OBJECT = 1 };

struct Record {
    double ts;
    int64_t lineno;
    uint64_t key; /* ptr (kinds 0-3), pfn (4-6), or the object's index */
    int32_t tail; /* number of the tail in the tail list */
    int16_t cpu;
    uint8_t kind;
    uint8_t type; /* REC_EVENT or REC_OBJECT */
};

static uint64_t
mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ull;
    return x ^ (x >> 33);
}

static void
ptrs_free(PtrTable *t)
{
    PyMem_Free(t->keys);
    PyMem_Free(t->values);
    PyMem_Free(t->state);
    memset(t, 0, sizeof *t);
}

/* The slot of key: its own, or the empty one where it would go (a removed slot on the
   way is reused for an insert). */
static size_t
ptrs_slot(const PtrTable *t, uint64_t key, int for_insert)
{
    size_t mask = t->cap - 1, i = (size_t)mix64(key) & mask;
    size_t first_removed = (size_t)-1;
    for (;;) {
        uint8_t st = t->state[i];
        if (st == 0)
            return (for_insert && first_removed != (size_t)-1) ? first_removed : i;
        if (st == 1 && t->keys[i] == key)
            return i;
        if (st == 2 && first_removed == (size_t)-1)
            first_removed = i;
        i = (i + 1) & mask;
    }
}

static int
ptrs_grow(PtrTable *t)
{
    PtrTable old = *t;
    size_t cap = old.cap ? old.cap : 1024;
    while ((old.used + 1) * 2 > cap) /* else the same size: removed slots cleared */
        cap *= 2;
    PtrTable t2 = {PyMem_Malloc(cap * sizeof(uint64_t)), PyMem_Malloc(cap * sizeof(int64_t)),
                   PyMem_Calloc(cap, 1), cap, 0, 0};
    if (!t2.keys || !t2.values || !t2.state) {
        ptrs_free(&t2);
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < old.cap; i++) {
        if (old.state[i] == 1) {
            size_t j = ptrs_slot(&t2, old.keys[i], 1);
            t2.keys[j] = old.keys[i];
            t2.values[j] = old.values[i];
            t2.state[j] = 1;
            t2.used++;
        }
    }
    ptrs_free(&old);
    *t = t2;
    return 0;
}

static int64_t *
ptrs_find(const PtrTable *t, uint64_t key)
{
    if (!t->cap)
        return NULL;
    size_t i = ptrs_slot(t, key, 0);
    return t->state[i] == 1 ? &t->values[i] : NULL;
}

static int
ptrs_set(PtrTable *t, uint64_t key, int64_t value)
{
    int64_t *v = ptrs_find(t, key);
    if (v) {
        *v = value;
        return 0;
    }
    if ((t->used + t->removed + 1) * 2 > t->cap && ptrs_grow(t) < 0)
        return -1;
    size_t i = ptrs_slot(t, key, 1);
    if (t->state[i] == 2)
        t->removed--;
    t->keys[i] = key;
    t->values[i] = value;
    t->state[i] = 1;
    t->used++;
    return 0;
}

static void
ptrs_remove(PtrTable *t, uint64_t key)
{
    if (!t->cap)
        return;
    size_t i = ptrs_slot(t, key, 0);
    if (t->state[i] == 1) {
        t->state[i] = 2;
        t->used--;
        t->removed++;
    }
}

/* 1 and *out when p[0:n] is 16 lowercase hex digits (a pointer's only spelling). */
static int
canonical_ptr(const char *p, Py_ssize_t n, uint64_t *out)
{
    if (n != 16)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = p[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else
            return 0;
        v = (v << 4) | (uint64_t)d;
    }
    *out = v;
    return 1;
}

static const char hex_digits[] = "0123456789abcdef";

static PyObject *
ptr_text(uint64_t v)
{
    PyObject *s = PyUnicode_New(16, 127);
    if (s) {
        Py_UCS1 *d = PyUnicode_1BYTE_DATA(s);
        for (int i = 15; i >= 0; i--, v >>= 4)
            d[i] = (Py_UCS1)hex_digits[v & 15];
    }
    return s;
}

/* canonical_ptr of a str. */
static int
canonical_str(PyObject *ptr, uint64_t *out)
{
    return PyUnicode_IS_ASCII(ptr)
           && canonical_ptr((const char *)PyUnicode_1BYTE_DATA(ptr), PyUnicode_GET_LENGTH(ptr),
                            out);
}

/* ptrs.get(ptr) for any str: 1 and *out when present, 0 when not, -1 on an error. */
static int
ptr_lookup(Scanner *self, PyObject *ptr, int64_t *out)
{
    uint64_t key;
    if (canonical_str(ptr, &key)) {
        int64_t *v = ptrs_find(&self->ptrs, key);
        if (!v)
            return 0;
        *out = *v;
        return 1;
    }
    PyObject *v = PyDict_GetItemWithError(self->other_ptrs, ptr);
    if (!v)
        return PyErr_Occurred() ? -1 : 0;
    *out = PyLong_AsLongLong(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 1;
}

static int
ptr_store(Scanner *self, PyObject *ptr, int64_t value)
{
    uint64_t key;
    if (canonical_str(ptr, &key))
        return ptrs_set(&self->ptrs, key, value);
    PyObject *v = PyLong_FromLongLong(value);
    if (!v)
        return -1;
    int r = PyDict_SetItem(self->other_ptrs, ptr, v);
    Py_DECREF(v);
    return r;
}

static Record *
new_record(Scanner *self)
{
    if (self->nrec == self->rec_cap) {
        size_t cap = self->rec_cap ? self->rec_cap * 2 : 4096;
        Record *r = PyMem_Realloc(self->recs, cap * sizeof(Record));
        if (!r) {
            PyErr_NoMemory();
            return NULL;
        }
        self->recs = r;
        self->rec_cap = cap;
    }
    return &self->recs[self->nrec++];
}

static void
count_event(Scanner *self, long kind, double ts)
{
    self->counts[kind]++;
    if (ts < self->low)
        self->low = ts;
    if (ts > self->high)
        self->high = ts;
}

/* The loop's timestamp check: finite, and no more than the tolerance before the
   latest time (NaN fails every comparison; the latest time is finite, so an infinite
   time is always later than it). */
static int
time_ok(const Scanner *self, double ts)
{
    return ts >= self->floor && !isinf(ts);
}

/* A good time: the latest so far, and how far back the next one may be. */
static void
time_advance(Scanner *self, double ts)
{
    if (ts > self->top) {
        self->top = ts;
        self->floor = ts - self->tolerance;
    }
}

/* No byte of p[0:n] at 0x80 or above: 16 bytes at a time (SSE2, every x86-64 has it),
   then 8. */
static int
is_ascii(const char *p, Py_ssize_t n)
{
    uint64_t high = 0;
    Py_ssize_t k = 0;
#ifdef __SSE2__
    __m128i acc = _mm_setzero_si128();
    for (; k + 16 <= n; k += 16)
        acc = _mm_or_si128(acc, _mm_loadu_si128((const __m128i *)(p + k)));
    if (_mm_movemask_epi8(acc))
        return 0;
#endif
    for (; k + 8 <= n; k += 8) {
        uint64_t w;
        memcpy(&w, p + k, 8);
        high |= w;
    }
    for (; k < n; k++)
        high |= (unsigned char)p[k];
    return (high & 0x8080808080808080ull) == 0;
}

/* Scanner.chunk(buf, pos, lineno[, end]) -> (pos, lineno): reads the lines of buf[pos:end]
   (each ending in "\n", the last one maybe not) while the fast path takes them whole;
   returns where it stopped (end at the end; end is len(buf) by default) and the number
   of the last line read. */
static PyObject *
scanner_chunk(Scanner *self, PyObject *const *args, Py_ssize_t nargs)
{
    if ((nargs != 3 && nargs != 4) || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError,
                        "chunk(buf: bytes, pos: int, lineno: int[, end: int])");
        return NULL;
    }
    const char *buf = PyBytes_AS_STRING(args[0]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    long long lineno = PyLong_AsLongLong(args[2]);
    Py_ssize_t end = nargs == 4 ? PyLong_AsSsize_t(args[3]) : size;
    if (PyErr_Occurred())
        return NULL;
    if (end < 0 || end > size) {
        PyErr_SetString(PyExc_ValueError, "chunk: end outside the buffer");
        return NULL;
    }
    size = end; /* the lines of buf[pos:end] */
    if (pos < 0 || pos > size) {
        PyErr_SetString(PyExc_ValueError, "chunk: pos outside the buffer");
        return NULL;
    }
    int bad_allocs = PyDict_GET_SIZE(self->bad_allocs) > 0;
    while (pos < size) {
        const char *s = buf + pos;
        const char *nl = memchr(s, '\n', (size_t)(size - pos));
        Py_ssize_t n = nl ? nl - s : size - pos;
        if (!is_ascii(s, n))
            break;
        Fields f;
        int got = read_fields(self, s, n, &f);
        if (got < 0)
            return NULL;
        if (!got || f.tid < 0)
            break;
        long cpu = f.cpu_entry && f.cpu_entry->ival != LONG_MIN ? f.cpu_entry->ival
                                                                : PyLong_AsLong(f.cpu_obj);
        if (cpu == -1 && PyErr_Occurred())
            return NULL;
        if (cpu < 0 || cpu > INT16_MAX)
            break;
        uint64_t key = (uint64_t)f.pfn;
        if (f.kind < 4) {
            if (!canonical_ptr(f.ptr, f.ptr_len, &key))
                break;
        }
        /* The checks, as the loop makes them, without touching the state until the
           line is known to pass them all. */
        double ts = f.ts;
        if (!time_ok(self, ts))
            break;
        int64_t *seen = NULL;
        int null = f.kind < 4 && key == 0;
        if (f.kind == 1 || f.kind == 3) {
            seen = ptrs_find(&self->ptrs, key);
            if (seen && *seen < 0)
                break; /* a duplicated free */
            if (!seen && !null && bad_allocs) {
                PyObject *ptr = ptr_text(key);
                if (!ptr)
                    return NULL;
                int in = PyDict_Contains(self->bad_allocs, ptr);
                Py_DECREF(ptr);
                if (in < 0)
                    return NULL;
                if (in)
                    break; /* the free of a bad allocation */
            }
        }
        lineno++;
        time_advance(self, ts);
        if (f.kind == 0 || f.kind == 2) {
            if (!null && ptrs_set(&self->ptrs, key, lineno) < 0)
                return NULL;
        } else if (f.kind == 1 || f.kind == 3) {
            if (seen)
                *seen = -lineno;
            else if (!null && ptrs_set(&self->ptrs, key, -lineno) < 0)
                return NULL;
        }
        Record *r = new_record(self);
        if (!r)
            return NULL;
        r->ts = ts;
        r->lineno = lineno;
        r->key = key;
        r->tail = f.tid;
        r->cpu = (int16_t)cpu;
        r->kind = (uint8_t)f.kind;
        r->type = REC_EVENT;
        count_event(self, f.kind, ts);
        pos += n + (nl != NULL);
    }
    return Py_BuildValue("(nL)", pos, lineno);
}

/* Scanner.accept(ev) -> 0, or why the loop would call the line bad: 1 its timestamp, 2 a
   duplicated free, 3 the free of a bad allocation. An accepted event is recorded. */
static PyObject *
scanner_accept(Scanner *self, PyObject *ev)
{
    if (!PyTuple_Check(ev) || PyTuple_GET_SIZE(ev) != 13) {
        PyErr_SetString(PyExc_TypeError, "accept(ev: 13-tuple)");
        return NULL;
    }
    double ts = PyFloat_AsDouble(PyTuple_GET_ITEM(ev, 0));
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(ev, 2));
    long long lineno = PyLong_AsLongLong(PyTuple_GET_ITEM(ev, 12));
    if (PyErr_Occurred())
        return NULL;
    if (kind < 0 || kind >= 7) {
        PyErr_SetString(PyExc_ValueError, "accept: kind outside 0..6");
        return NULL;
    }
    if (!time_ok(self, ts))
        return PyLong_FromLong(1);
    time_advance(self, ts);
    if (kind < 4) {
        PyObject *ptr = PyTuple_GET_ITEM(ev, 3);
        if (!PyUnicode_Check(ptr)) {
            PyErr_SetString(PyExc_TypeError, "accept: ptr must be a str");
            return NULL;
        }
        int null = PyUnicode_GET_LENGTH(ptr) == 16 && PyUnicode_IS_ASCII(ptr)
                   && memcmp(PyUnicode_1BYTE_DATA(ptr), "0000000000000000", 16) == 0;
        if (kind == 0 || kind == 2) {
            if (!null && ptr_store(self, ptr, lineno) < 0)
                return NULL;
        } else {
            int64_t seen;
            int got = ptr_lookup(self, ptr, &seen);
            if (got < 0)
                return NULL;
            if (got) {
                if (seen < 0)
                    return PyLong_FromLong(2);
                if (ptr_store(self, ptr, -lineno) < 0)
                    return NULL;
            } else if (!null) {
                int in = PyDict_GET_SIZE(self->bad_allocs) ? PyDict_Contains(self->bad_allocs, ptr)
                                                           : 0;
                if (in < 0)
                    return NULL;
                if (in)
                    return PyLong_FromLong(3);
                if (ptr_store(self, ptr, -lineno) < 0)
                    return NULL;
            }
        }
    }
    Record *r = new_record(self);
    if (!r)
        return NULL;
    r->ts = ts;
    r->lineno = lineno;
    r->key = (uint64_t)PyList_GET_SIZE(self->objects);
    r->tail = -1;
    r->cpu = 0;
    r->kind = (uint8_t)kind;
    r->type = REC_OBJECT;
    if (PyList_Append(self->objects, ev) < 0) {
        self->nrec--;
        return NULL;
    }
    count_event(self, kind, ts);
    return PyLong_FromLong(0);
}

/* Scanner.ptr_get(ptr) -> int | None: ptrs.get(ptr). */
static PyObject *
scanner_ptr_get(Scanner *self, PyObject *ptr)
{
    if (!PyUnicode_Check(ptr)) {
        PyErr_SetString(PyExc_TypeError, "ptr_get(ptr: str)");
        return NULL;
    }
    int64_t v;
    int got = ptr_lookup(self, ptr, &v);
    if (got < 0)
        return NULL;
    if (!got)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(v);
}

/* Scanner.ptr_pop(ptr) -> None: ptrs.pop(ptr, None). */
static PyObject *
scanner_ptr_pop(Scanner *self, PyObject *ptr)
{
    if (!PyUnicode_Check(ptr)) {
        PyErr_SetString(PyExc_TypeError, "ptr_pop(ptr: str)");
        return NULL;
    }
    uint64_t key;
    if (canonical_str(ptr, &key)) {
        ptrs_remove(&self->ptrs, key);
        Py_RETURN_NONE;
    }
    PyObject *v = PyObject_CallMethod(self->other_ptrs, "pop", "OO", ptr, Py_None);
    if (!v)
        return NULL;
    Py_DECREF(v);
    Py_RETURN_NONE;
}

/* Scanner.take() -> (records, objects, new_tails, events, low, high): the events
   recorded since the last take, the tails numbered since, and the earliest and latest
   time among those events; then starts anew. */
static PyObject *
scanner_take(Scanner *self, PyObject *unused)
{
    PyObject *records = PyBytes_FromStringAndSize((const char *)self->recs,
                                                  (Py_ssize_t)(self->nrec * sizeof(Record)));
    if (!records)
        return NULL;
    Py_ssize_t nt = PyList_GET_SIZE(self->tail_list);
    PyObject *new_tails = PyList_GetSlice(self->tail_list, self->tails_sent, nt);
    if (!new_tails) {
        Py_DECREF(records);
        return NULL;
    }
    PyObject *out = Py_BuildValue("(NONndd)", records, self->objects, new_tails,
                                  (Py_ssize_t)self->nrec, self->low, self->high);
    if (!out)
        return NULL;
    PyObject *objects = PyList_New(0);
    if (!objects) {
        Py_DECREF(out);
        return NULL;
    }
    Py_SETREF(self->objects, objects);
    self->tails_sent = nt;
    self->nrec = 0;
    self->low = Py_HUGE_VAL;
    self->high = -Py_HUGE_VAL;
    return out;
}

/* Scanner.counts() -> list: events per kind so far. */
static PyObject *
scanner_counts(Scanner *self, PyObject *unused)
{
    PyObject *out = PyList_New(7);
    if (!out)
        return NULL;
    for (int k = 0; k < 7; k++) {
        PyObject *v = PyLong_FromLongLong(self->counts[k]);
        if (!v) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, k, v);
    }
    return out;
}

static PyObject *
scanner_get_top(Scanner *self, void *closure)
{
    return PyFloat_FromDouble(self->top);
}

static PyMethodDef scanner_methods[] = {
    {"chunk", (PyCFunction)(void (*)(void))scanner_chunk, METH_FASTCALL,
     "chunk(buf, pos, lineno[, end]) -> (pos, lineno): record the lines of buf[pos:end] the "
     "fast path takes whole."},
    {"accept", (PyCFunction)scanner_accept, METH_O,
     "accept(ev) -> 0 (recorded), 1 bad timestamp, 2 duplicated free, 3 free of a bad "
     "allocation."},
    {"ptr_get", (PyCFunction)scanner_ptr_get, METH_O, "ptr_get(ptr): ptrs.get(ptr)."},
    {"ptr_pop", (PyCFunction)scanner_ptr_pop, METH_O, "ptr_pop(ptr): ptrs.pop(ptr, None)."},
    {"take", (PyCFunction)scanner_take, METH_NOARGS,
     "take() -> (records, objects, new_tails, events, low, high)."},
    {"counts", (PyCFunction)scanner_counts, METH_NOARGS, "counts(): events per kind."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef scanner_getset[] = {
    {"top", (getter)scanner_get_top, NULL, "the latest timestamp so far", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sim._ftrace_scan.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Scanner(kinds, cpus, tails, kfree_tail, null_page, bad_allocs, tolerance): "
              "the parser's fast path.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)scanner_init,
    .tp_dealloc = (destructor)scanner_dealloc,
    .tp_methods = scanner_methods,
    .tp_getset = scanner_getset,
};

/* ------------------------------------------------------------------ the decoder */

typedef struct {
    PyObject_HEAD
    PyObject *tails; /* the tails by number, as the scanner numbered them */
    PyObject *empty, *minus_one, *zero;
} Decoder;

static int
decoder_init(Decoder *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "", kwlist))
        return -1;
    if (self->tails) {
        PyErr_SetString(PyExc_RuntimeError, "a Decoder is initialised once");
        return -1;
    }
    if (!(self->tails = PyList_New(0)) || !(self->empty = PyUnicode_FromStringAndSize("", 0))
        || !(self->minus_one = PyLong_FromLong(-1)) || !(self->zero = PyLong_FromLong(0)))
        return -1;
    return 0;
}

static void
decoder_dealloc(Decoder *self)
{
    Py_XDECREF(self->tails);
    Py_XDECREF(self->empty);
    Py_XDECREF(self->minus_one);
    Py_XDECREF(self->zero);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
event_of(Decoder *self, const Record *r)
{
    PyObject *tail = NULL;
    Py_ssize_t want = r->kind < 4 ? 5 : 3;
    if (r->tail >= 0 && r->tail < PyList_GET_SIZE(self->tails))
        tail = PyList_GET_ITEM(self->tails, r->tail);
    if (!tail || !PyTuple_Check(tail) || PyTuple_GET_SIZE(tail) != want || r->kind >= 7) {
        PyErr_SetString(PyExc_ValueError, "decode: a record names no tail of its shape");
        return NULL;
    }
    PyObject *ev = PyTuple_New(13);
    if (!ev)
        return NULL;
    PyObject *v;
    if (!(v = PyFloat_FromDouble(r->ts)))
        goto error;
    PyTuple_SET_ITEM(ev, 0, v);
    if (!(v = PyLong_FromLong(r->cpu)))
        goto error;
    PyTuple_SET_ITEM(ev, 1, v);
    if (!(v = PyLong_FromLong(r->kind)))
        goto error;
    PyTuple_SET_ITEM(ev, 2, v);
    if (r->kind < 4) {
        if (!(v = ptr_text(r->key)))
            goto error;
        PyTuple_SET_ITEM(ev, 3, v);
        give(ev, 4, self->minus_one);
        give(ev, 5, PyTuple_GET_ITEM(tail, 0));
        give(ev, 6, PyTuple_GET_ITEM(tail, 1));
        give(ev, 7, PyTuple_GET_ITEM(tail, 2));
        give(ev, 8, PyTuple_GET_ITEM(tail, 3));
        give(ev, 9, self->zero);
        give(ev, 10, self->zero);
        give(ev, 11, PyTuple_GET_ITEM(tail, 4));
    } else {
        give(ev, 3, self->empty);
        if (!(v = PyLong_FromUnsignedLongLong(r->key)))
            goto error;
        PyTuple_SET_ITEM(ev, 4, v);
        give(ev, 5, Py_None);
        give(ev, 6, self->zero);
        give(ev, 7, self->zero);
        give(ev, 8, PyTuple_GET_ITEM(tail, 2));
        give(ev, 9, PyTuple_GET_ITEM(tail, 0));
        give(ev, 10, PyTuple_GET_ITEM(tail, 1));
        give(ev, 11, Py_False);
    }
    if (!(v = PyLong_FromLongLong(r->lineno)))
        goto error;
    PyTuple_SET_ITEM(ev, 12, v);
    return ev;
error:
    Py_DECREF(ev); /* the items not set yet are NULL, which tuple dealloc skips */
    return NULL;
}

/* Decoder.decode(records, objects, new_tails) -> list: the event tuples of one take(). */
static PyObject *
decoder_decode(Decoder *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyBytes_Check(args[0]) || !PyList_Check(args[1])
        || !PyList_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "decode(records: bytes, objects: list, new_tails: list)");
        return NULL;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    if (size % (Py_ssize_t)sizeof(Record)) {
        PyErr_SetString(PyExc_ValueError, "decode: records of a partial record");
        return NULL;
    }
    PyObject *objects = args[1], *new_tails = args[2];
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(new_tails); k++)
        if (PyList_Append(self->tails, PyList_GET_ITEM(new_tails, k)) < 0)
            return NULL;
    Py_ssize_t n = size / (Py_ssize_t)sizeof(Record);
    const char *p = PyBytes_AS_STRING(args[0]);
    PyObject *out = PyList_New(n);
    if (!out)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        Record r;
        memcpy(&r, p + i * (Py_ssize_t)sizeof(Record), sizeof r);
        PyObject *ev;
        if (r.type == REC_OBJECT) {
            if (r.key >= (uint64_t)PyList_GET_SIZE(objects)) {
                PyErr_SetString(PyExc_ValueError, "decode: a record names no object");
                Py_DECREF(out);
                return NULL;
            }
            ev = PyList_GET_ITEM(objects, (Py_ssize_t)r.key);
            Py_INCREF(ev);
        } else if (!(ev = event_of(self, &r))) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, ev);
    }
    return out;
}

static PyMethodDef decoder_methods[] = {
    {"decode", (PyCFunction)(void (*)(void))decoder_decode, METH_FASTCALL,
     "decode(records, objects, new_tails) -> list of event tuples."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject DecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sim._ftrace_scan.Decoder",
    .tp_basicsize = sizeof(Decoder),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Decoder(): the event tuples of a Scanner's records.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)decoder_init,
    .tp_dealloc = (destructor)decoder_dealloc,
    .tp_methods = decoder_methods,
};

/* same_text(a, b) -> bool: the memo's comparison of two texts of one length (same_text,
   small_word), for the tests: in the memo it decides only when two texts' hashes
   collide, which no trace can be made to show. */
static PyObject *
module_same_text(PyObject *self, PyObject *args)
{
    const char *a, *b;
    Py_ssize_t na, nb;
    if (!PyArg_ParseTuple(args, "y#y#:same_text", &a, &na, &b, &nb))
        return NULL;
    if (na != nb) {
        PyErr_SetString(PyExc_ValueError, "same_text: texts of one length expected");
        return NULL;
    }
    return PyBool_FromLong(same_text(a, b, na));
}

static PyMethodDef module_methods[] = {
    {"same_text", module_same_text, METH_VARARGS,
     "same_text(a, b): the memo's comparison of two texts of one length."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "sim._ftrace_scan",
    "The fast path of sim/ftrace.py's trace parser, in C.", -1, module_methods, NULL, NULL,
    NULL, NULL,
};

PyMODINIT_FUNC
PyInit__ftrace_scan(void)
{
    const char spaces[] = {'\t', '\n', '\x0b', '\x0c', '\r', '\x1c', '\x1d', '\x1e', '\x1f',
                           ' '};
    for (size_t k = 0; k < sizeof spaces; k++)
        is_space[(unsigned char)spaces[k]] = 1;
    if (PyType_Ready(&ScannerType) < 0 || PyType_Ready(&DecoderType) < 0)
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
    Py_INCREF(&DecoderType);
    if (PyModule_AddObject(m, "Decoder", (PyObject *)&DecoderType) < 0) {
        Py_DECREF(&DecoderType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
