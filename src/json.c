/* json.c: JSON, both ways, by our own code: the encoder writes what lua-cjson 2.1.0 writes for the same
   value (tables with keys 1..n are arrays, other tables objects, an empty table {}, cjson.null null, the same
   refusals) except for numbers, which cjson rounds to 14 significant digits (an id of 15 digits, or any
   integer past 2^47, changed on its way out): integers are written exactly, other numbers in the fewest
   digits that read back to the same double. The decoder reads what cjson reads, several times faster. */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#endif
#include "json.h"

#define MAX_SAFE 9007199254740992.0   /* 2^53 */

/* eight bytes at a time: x has a byte equal to c when ZEROS(x ^ (ONES * c)) & HIGHS (the lowest flag exact, one
   above a true hit possibly flagged too), a byte under n (n <= 0x80) when (x - ONES * n) & ~x & HIGHS */
typedef unsigned long long u64;
#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
#define ZEROS(v) (((v) - ONES) & ~(v))
#define MAX_DEPTH SM_JSON_MAX_DEPTH   /* cjson's encode_max_depth and decode_max_depth */

void sm_push_null(lua_State *L) { lua_pushlightuserdata(L, NULL); }  /* cjson.null is NULL lightuserdata */

/* ---- encoding ---------------------------------------------------------------------------------------------
   Into a buffer that is a userdata at a fixed stack slot, replaced by one twice the size when full: Lua owns
   every byte, so a memory error raised while encoding leaks nothing, and no luaL_Buffer is left half-written
   (see decode_string). Refusals are returned, not raised: sm_json_encode pushes nil and the message. */
typedef struct je {
  lua_State *L;
  char *p;
  size_t len, cap;
  int slot;                    /* the buffer's stack index */
  const char *err;             /* static text; errtype: a type name to put in it, or NULL */
  const char *errtype;
  int errdepth;
} je;

static void reserve(je *e, size_t n) {
  size_t cap = e->cap;
  char *p;
  if (n <= cap - e->len) return;
  while (n > cap - e->len) {
    if (cap > ((size_t)-1) / 2) luaL_error(e->L, "sigmamind.core: JSON text too large");
    cap *= 2;
  }
  p = (char *)lua_newuserdatauv(e->L, cap, 0);
  memcpy(p, e->p, e->len);
  lua_replace(e->L, e->slot);
  e->p = p;
  e->cap = cap;
}

static void put(je *e, const char *s, size_t n) {
  reserve(e, n);
  memcpy(e->p + e->len, s, n);
  e->len += n;
}

static int efail(je *e, const char *msg, const char *type) {
  e->err = msg;
  e->errtype = type;
  return 0;
}

/* "..." with the escapes cjson writes, but for '/', which JSON does not need escaped. Eight bytes a step
   while none of them needs an escape (a byte under 0x20, '"' or '\\'), then byte by byte up to the next step. */
static void put_string(je *e, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t i = 0, run = 0;
  reserve(e, n + 2);
  e->p[e->len++] = '"';
  while (i < n) {
    unsigned char c;
    const char *esc;
    char u[6];
    size_t elen = 2;
    if (n - i >= 8) {
      u64 x;
      memcpy(&x, s + i, 8);
      if (!((((x - ONES * 0x20) & ~x) | ZEROS(x ^ (ONES * '"')) | ZEROS(x ^ (ONES * '\\'))) & HIGHS)) {
        i += 8;
        continue;
      }
    }
    c = (unsigned char)s[i++];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    switch (c) {
      case '"': esc = "\\\""; break;
      case '\\': esc = "\\\\"; break;
      case '\b': esc = "\\b"; break;
      case '\f': esc = "\\f"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      case '\t': esc = "\\t"; break;
      default:
        u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0'; u[4] = hex[c >> 4]; u[5] = hex[c & 15];
        esc = u; elen = 6;
    }
    put(e, s + run, i - 1 - run);
    put(e, esc, elen);
    run = i;
  }
  if (n - run + 1 <= e->cap - e->len) {           /* room was made above, unless escapes took it */
    memcpy(e->p + e->len, s + run, n - run);
    e->len += n - run;
    e->p[e->len++] = '"';
  } else {
    put(e, s + run, n - run);
    put(e, "\"", 1);
  }
}

/* the number at idx as JSON: an integer exactly, an integral float within 2^53 as an integer, any other the
   shortest of %.15g, %.16g, %.17g that reads back the same, with '.' for the locale's decimal point */
static int put_number(je *e, int idx) {
  char buf[64];
  int n;
  if (lua_isinteger(e->L, idx)) {
    n = snprintf(buf, sizeof buf, "%lld", (long long)lua_tointeger(e->L, idx));
  } else {
    double d = (double)lua_tonumber(e->L, idx);
    const char *dp;
    int prec, i;
    if (d != d || d == HUGE_VAL || d == -HUGE_VAL)
      return efail(e, "Cannot serialise number: must not be NaN or Inf", NULL);
    if (d == floor(d) && fabs(d) <= MAX_SAFE) {
      n = snprintf(buf, sizeof buf, "%.0f", d);
    } else {
      n = 0;
      for (prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) break;
      }
      dp = localeconv()->decimal_point;
      if (dp && dp[0] != '.' && dp[0] != '\0' && dp[1] == '\0')
        for (i = 0; i < n; i++) if (buf[i] == dp[0]) buf[i] = '.';
    }
  }
  if (n <= 0 || (size_t)n >= sizeof buf) return efail(e, "Cannot serialise number", NULL);
  put(e, buf, (size_t)n);
  return 1;
}

static int encode_value(je *e, int idx, int depth);

static int encode_table(je *e, int t, int depth) {
  lua_State *L = e->L;
  lua_Integer max = 0, items = 0, i;
  int is_array = 1, first = 1;
  if (depth > MAX_DEPTH) { e->errdepth = depth; return efail(e, "Cannot serialise, excessive nesting", NULL); }
  luaL_checkstack(L, 3, "sigmamind.core: JSON too deep");
  /* cjson's rule: an array when every key is an integer >= 1 (and not excessively sparse); else an object */
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
      lua_Integer k = lua_tointeger(L, -1);
      if (k > max) max = k;
      items++;
      continue;
    }
    lua_pop(L, 1);
    is_array = 0;
    break;
  }
  if (is_array && items > 0) {
    if (max > items * 2 && max > 10) return efail(e, "Cannot serialise table: excessively sparse array", NULL);
    put(e, "[", 1);
    for (i = 1; i <= max; i++) {
      if (i > 1) put(e, ",", 1);
      lua_rawgeti(L, t, i);
      if (!encode_value(e, lua_gettop(L), depth)) return 0;
      lua_pop(L, 1);
    }
    put(e, "]", 1);
    return 1;
  }
  put(e, "{", 1);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    int k = lua_gettop(L) - 1;
    if (!first) put(e, ",", 1);
    first = 0;
    if (lua_type(L, k) == LUA_TSTRING) {
      size_t n;
      const char *s = lua_tolstring(L, k, &n);
      put_string(e, s, n);
    } else if (lua_type(L, k) == LUA_TNUMBER) {      /* written as cjson does: the number, quoted */
      put(e, "\"", 1);
      if (!put_number(e, k)) return 0;
      put(e, "\"", 1);
    } else {
      return efail(e, "Cannot serialise table: table key must be a number or string", NULL);
    }
    put(e, ":", 1);
    if (!encode_value(e, k + 1, depth)) return 0;
    lua_pop(L, 1);
  }
  put(e, "}", 1);
  return 1;
}

static int encode_value(je *e, int idx, int depth) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      put_string(e, s, n);
      return 1;
    }
    case LUA_TNUMBER: return put_number(e, idx);
    case LUA_TBOOLEAN: if (lua_toboolean(L, idx)) put(e, "true", 4); else put(e, "false", 5); return 1;
    case LUA_TNIL: put(e, "null", 4); return 1;
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL) { put(e, "null", 4); return 1; }
      return efail(e, "Cannot serialise %s: type not supported", "lightuserdata");
    case LUA_TTABLE: return encode_table(e, idx, depth + 1);
    default: return efail(e, "Cannot serialise %s: type not supported", lua_typename(L, lua_type(L, idx)));
  }
}

int sm_json_encode(lua_State *L, int idx) {
  je e;
  int top = lua_gettop(L);
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 4, "sigmamind.core: out of stack space");
  e.L = L;
  e.len = 0;
  e.cap = 256;
  e.p = (char *)lua_newuserdatauv(L, e.cap, 0);
  e.slot = top + 1;
  e.err = e.errtype = NULL;
  e.errdepth = 0;
  if (encode_value(&e, idx, 0)) {
    lua_pushlstring(L, e.p, e.len);
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return 1;
  }
  lua_settop(L, top);
  lua_pushnil(L);
  if (e.errdepth) lua_pushfstring(L, "%s (%d)", e.err, e.errdepth);
  else if (e.errtype) lua_pushfstring(L, e.err, e.errtype);
  else lua_pushstring(L, e.err);
  return 0;
}

/* ---- decoding ---------------------------------------------------------------------------------------------
   Our own decoder, straight from the response bytes (no copy into a Lua string first): numbers are born
   integers when integral within +-2^53, in the one pass, and tables are made at their size rather than grown one
   rehash at a time, as cjson does: an object is made at the number of members last seen in an object with the
   same first key (records of a page, the same response again) and filled as it is read; one with no such
   memory, and every array, is gathered on the Lua stack first (up to PENDING members) and made at its size. It
   accepts exactly what lua-cjson 2.1.0 accepts (fuzz/fuzz_json.c checks it differentially against the private
   cjson instance), except that a NUL byte outside a string is refused (cjson takes it for the end of the text).
   No C memory is held while Lua allocates, so an allocation error raised from inside leaks nothing. */

#define PENDING   64           /* members gathered on the stack before a table is made and filled as it goes */

/* Short strings met again and again (every key, and values such as statuses, numbers and agent ids) are
   pushed from a cache instead of being made anew: Lua would hash every byte of each, look it up in its string
   table and, the first time in a while, allocate it; a hit here is a cheap hash of the length and of the first
   and last eight bytes, a compare of those (and of the bytes between, past 16), and an array read.
   SC_SLOTS strings of up to SC_LEN bytes (keys of any length up to that, values of up to SC_VALUE, which leaves
   out ids and times, different in every record), two entries for each hash (direct-mapped, "callId" and
   "recordingUrl" took turns in one slot all through a page of calls): at most about 30 KB per Lua state, kept
   for its life. The strings live in a table in the registry, their bytes and lengths in a userdata in that
   table's last slot, so a hit needs no Lua string compare. Beside each entry: the number of members of the last
   objects whose first key it was (a table's size, the next time). */
#define SC_SLOTS 512
#define SC_LEN   40
#define SC_VALUE 16
typedef struct strcache {
  u64 head[SC_SLOTS], tail[SC_SLOTS];      /* the first 8 bytes (zeros past a shorter string's end), the last 8 */
  unsigned char len[SC_SLOTS];             /* 0: empty */
  unsigned char size[SC_SLOTS];            /* members of the last objects whose first key was here; 0: none */
  unsigned char mru[SC_SLOTS / 2];         /* of each pair of entries, the one used last */
  char bytes[SC_SLOTS][SC_LEN];
} strcache;
static const char cache_key = 'c';

typedef struct jd {
  lua_State *L;
  const unsigned char *p, *end, *start;
  int depth;
  int drop_nulls;              /* object members that are null are left out */
  const char *err;             /* what went wrong (static text), at p */
  strcache *sc;                /* the cache, and its table's stack index */
  int sc_tbl;
} jd;

static int jfail(jd *d, const char *msg) {
  d->err = msg;
  return 0;
}

#define IS_WS(c) ((c) == ' ' || (c) == '\n' || (c) == '\r' || (c) == '\t')
#define IS_DIGIT(c) ((unsigned)((c) - '0') < 10u)

static void skip_ws_run(jd *d) {
  const unsigned char *p = d->p, *end = d->end;
  while (p < end && IS_WS(*p)) p++;
  d->p = p;
}
/* compact JSON has none: one compare, no call */
#define skip_ws(d) do { if ((d)->p < (d)->end && IS_WS(*(d)->p)) skip_ws_run(d); } while (0)

static int decode_value(jd *d);

static int hex4(const unsigned char *p, unsigned *out) {
  unsigned v = 0;
  int i;
  for (i = 0; i < 4; i++) {
    unsigned c = p[i], h;
    if (IS_DIGIT(c)) h = c - '0';
    else if ((c | 0x20u) >= 'a' && (c | 0x20u) <= 'f') h = (c | 0x20u) - 'a' + 10;
    else return 0;
    v = v << 4 | h;
  }
  *out = v;
  return 1;
}

/* at "\u": writes the UTF-8 of one code point (a surrogate pair counts as one) at out, at most 4 bytes, no more
   than the escape's own length; d->p moves past the escape. Returns the bytes written, or 0 (error set). */
static size_t put_unicode(jd *d, char *out) {
  const unsigned char *p = d->p;
  unsigned cp, lo;
  size_t n;
  if (d->end - p < 6 || !hex4(p + 2, &cp)) return (size_t)jfail(d, "invalid unicode escape code");
  p += 6;
  if (cp >= 0xDC00 && cp <= 0xDFFF) return (size_t)jfail(d, "invalid unicode escape code");
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    if (d->end - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
      return (size_t)jfail(d, "invalid unicode escape code");
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    p += 6;
  }
  if (cp < 0x80) { out[0] = (char)cp; n = 1; }
  else if (cp < 0x800) { out[0] = (char)(0xC0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
  else if (cp < 0x10000) {
    out[0] = (char)(0xE0 | cp >> 12); out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
  } else {
    out[0] = (char)(0xF0 | cp >> 18); out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
  }
  d->p = p;
  return n;
}

/* the first byte at or after q that is '"', '\\' or NUL, or end: eight bytes a step. A zero byte of x ^ c is a
   byte of x equal to c; the usual "has a zero byte" test can also flag a byte above a true hit (a borrow), never
   one below, so its lowest flag is exact: on a little-endian machine that is the position found. */
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SM_CTZ_HIT 1
#endif
static const unsigned char *scan_string(const unsigned char *q, const unsigned char *end) {
#if defined(__SSE2__) && defined(__GNUC__)
  /* sixteen bytes a step where SSE2 is there (every x86-64): three compares, one mask */
  const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), zero = _mm_setzero_si128();
  while (end - q >= 16) {
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)q);
    int m = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
                                           _mm_cmpeq_epi8(x, zero)));
    if (m) return q + __builtin_ctz((unsigned)m);
    q += 16;
  }
#endif
  while (end - q >= 8) {
    u64 x, t;
    memcpy(&x, q, 8);
    t = (ZEROS(x ^ (ONES * '"')) | ZEROS(x ^ (ONES * '\\')) | ZEROS(x)) & HIGHS;
#ifdef SM_CTZ_HIT
    if (t) return q + (__builtin_ctzll(t) >> 3);
#else
    if (t) break;                    /* the byte loop below finds it */
#endif
    q += 8;
  }
  while (q < end && *q != '"' && *q != '\\' && *q != '\0') q++;
  return q;
}

/* The cache's entry for s[0..n), 1 <= n <= SC_LEN, followed in the buffer by its closing quote (so s + n < end):
   the entry holding it (*hit = 1), else the one to replace, the less recently used of its pair. Its first and
   last eight bytes (for n < 8, the n bytes and zeros) go in *head and *tail: with the length, those are the
   whole string up to 16 bytes. */
#if defined(__GNUC__)
#define SM_INLINE static inline __attribute__((always_inline))
#else
#define SM_INLINE static inline
#endif
#define SC_SAME(sc, i, s, n, a, b) ((sc)->len[i] == (n) && (sc)->head[i] == (a) && (sc)->tail[i] == (b) && \
                                    ((n) <= 16 || memcmp((sc)->bytes[i] + 8, (s) + 8, (n) - 16) == 0))
SM_INLINE unsigned sc_find(strcache *sc, const unsigned char *s, size_t n, const unsigned char *end, u64 *head,
                           u64 *tail, int *hit) {
  u64 a = 0, b = 0, x;
  unsigned i;
  if (n >= 8) { memcpy(&a, s, 8); memcpy(&b, s + n - 8, 8); }
#ifdef SM_CTZ_HIT
  else if (end - s >= 8) { memcpy(&a, s, 8); a &= ~0ull >> (64 - 8 * n); }   /* the first n bytes: low ones */
#endif
  else memcpy(&a, s, n);
  (void)end;
  *head = a;
  *tail = b;
  x = (a ^ (b * 0x9E3779B97F4A7C15ull)) + n;
  x ^= x >> 29; x *= 0xBF58476D1CE4E5B9ull; x ^= x >> 32;
  i = (unsigned)x & (SC_SLOTS - 2);
  *hit = 1;
  if (SC_SAME(sc, i, s, n, a, b)) { sc->mru[i >> 1] = 0; return i; }
  if (SC_SAME(sc, i + 1, s, n, a, b)) { sc->mru[i >> 1] = 1; return i + 1; }
  *hit = 0;
  return i + (sc->mru[i >> 1] ^ 1u);
}

/* pushes s[0..n) through the cache: entry i, hit or not, and its words come from sc_find */
static void push_cached(jd *d, const unsigned char *s, size_t n, unsigned i, int hit, u64 head, u64 tail) {
  strcache *sc = d->sc;
  if (hit) {
    lua_rawgeti(d->L, d->sc_tbl, (lua_Integer)i + 1);
    return;
  }
  lua_pushlstring(d->L, (const char *)s, n);
  lua_pushvalue(d->L, -1);
  lua_rawseti(d->L, d->sc_tbl, (lua_Integer)i + 1);
  memcpy(sc->bytes[i], s, n);
  sc->len[i] = (unsigned char)n;
  sc->head[i] = head;
  sc->tail[i] = tail;
  sc->size[i] = 0;                             /* another string's entry now: no size known for it */
  sc->mru[i >> 1] = (unsigned char)(i & 1);
}

/* the string from s (after its opening quote) with escapes, q its first '\\' or NUL or end (scan_string's):
   pushes it, unescaped into a scratch area no larger than its escaped form (every escape is at least as long as
   what it stands for): on the C stack when short, else a userdata. Not a luaL_Buffer: in Lua 5.4 its box is a
   to-be-closed slot, and Lua 5.4.4's lua_settop, closing it after a decoding error, may keep a pointer into the
   stack that the close moved. */
#define SHORT_STRING 1024
static int decode_escaped(jd *d, const unsigned char *s, const unsigned char *q) {
  const unsigned char *end = d->end, *close;
  char local[SHORT_STRING], *buf = local;
  size_t n;
  for (close = q; close < end && *close != '"'; close = scan_string(close, end)) {
    if (*close == '\0') break;
    if (*close == '\\') close += 2;              /* the escaped byte is skipped, '"' included */
  }
  if (close >= end || *close != '"') { d->p = close < end ? close : end; return jfail(d, "unexpected end of string"); }
  if ((size_t)(close - s) > sizeof local) buf = (char *)lua_newuserdata(d->L, (size_t)(close - s));
  memcpy(buf, s, (size_t)(q - s));
  n = (size_t)(q - s);
  while (q < close) {
    if (*q == '\\') {
      char c;
      switch (q[1]) {
        case '"': c = '"'; break;
        case '\\': c = '\\'; break;
        case '/': c = '/'; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u': {
          size_t k;
          d->p = q;
          if ((k = put_unicode(d, buf + n)) == 0) return 0;
          n += k;
          q = d->p;
          continue;
        }
        default: d->p = q; return jfail(d, "invalid escape code");
      }
      buf[n++] = c;
      q += 2;
    } else {
      const unsigned char *run = q;
      q = scan_string(q, close);
      memcpy(buf + n, run, (size_t)(q - run));
      n += (size_t)(q - run);
    }
  }
  lua_pushlstring(d->L, buf, n);
  if (buf != local) lua_remove(d->L, -2);
  d->p = close + 1;
  return 1;
}

/* at '"': pushes the string, through the cache when it has 1 to cache_max bytes and no escapes */
static int decode_string(jd *d, size_t cache_max) {
  const unsigned char *s = d->p + 1, *q = scan_string(s, d->end);
  size_t n;
  if (q >= d->end || *q != '"') return decode_escaped(d, s, q);
  n = (size_t)(q - s);                             /* no escapes: the common case, no copy but Lua's own */
  if (n - 1 < cache_max) {                         /* 1 to cache_max bytes */
    u64 head, tail;
    int hit;
    unsigned i = sc_find(d->sc, s, n, d->end, &head, &tail, &hit);
    push_cached(d, s, n, i, hit, head, tail);
  } else {
    lua_pushlstring(d->L, (const char *)s, n);
  }
  d->p = q + 1;
  return 1;
}

/* strtod on a NUL-terminated copy (on the C stack, or in a scratch userdata for an absurdly long number),
   with '.' made the C locale's decimal point, which strtod expects */
static double to_double(lua_State *L, const unsigned char *s, size_t n, int *ok) {
  char local[128], *buf = local, *endp;
  const char *dp = localeconv()->decimal_point;
  size_t i;
  double v;
  if (n >= sizeof local) buf = (char *)lua_newuserdata(L, n + 1);
  memcpy(buf, s, n);
  buf[n] = '\0';
  if (dp && dp[0] != '.' && dp[0] != '\0' && dp[1] == '\0')
    for (i = 0; i < n; i++) if (buf[i] == '.') buf[i] = dp[0];
  v = strtod(buf, &endp);
  *ok = endp == buf + n;
  if (buf != local) lua_pop(L, 1);
  return v;
}

/* at '-' or a digit: pushes the number; the grammar is cjson's (JSON's, and "1.", "1.e5" and "-.5" as strtod
   reads them) */
static int decode_number(jd *d) {
  const unsigned char *s = d->p, *q = s, *end = d->end;
  int neg = 0, frac = 0, ok;
  u64 v = 0;
  size_t nd = 0;
  double x;
  if (*q == '-') { neg = 1; q++; }
  if (neg && end - q >= 2 && q[0] == '.' && IS_DIGIT(q[1])) {
    /* "-.5": not JSON, but cjson reads it (strtod does), so it is read */
  } else if (q >= end || !IS_DIGIT(*q)) {
    return jfail(d, "invalid number");
  } else if (*q == '0') {
    q++; nd = 1;
    if (q < end && (IS_DIGIT(*q) || (*q | 0x20u) == 'x')) return jfail(d, "invalid number");
  } else {
    while (q < end && IS_DIGIT(*q)) { if (nd < 19) v = v * 10 + (unsigned)(*q - '0'); nd++; q++; }
  }
  if (q < end && *q == '.') {
    frac = 1; q++;
    while (q < end && IS_DIGIT(*q)) q++;
  }
  if (q < end && (*q | 0x20u) == 'e') {
    const unsigned char *e = q + 1;
    if (e < end && (*e == '+' || *e == '-')) e++;
    if (e < end && IS_DIGIT(*e)) {                 /* strtod leaves a bare "e" unread: so do we */
      frac = 1; q = e;
      while (q < end && IS_DIGIT(*q)) q++;
    }
  }
  d->p = q;
  if (!frac && nd <= 18) {                         /* exact, and within lua_Integer on every build */
    lua_pushinteger(d->L, neg ? -(lua_Integer)v : (lua_Integer)v);
    return 1;
  }
  x = to_double(d->L, s, (size_t)(q - s), &ok);
  if (!ok) { d->p = s; return jfail(d, "invalid number"); }
  if (x == floor(x) && fabs(x) <= MAX_SAFE) lua_pushinteger(d->L, (lua_Integer)x);
  else lua_pushnumber(d->L, (lua_Number)x);
  return 1;
}

/* the members gathered above base (key, value pairs or values) go into a new table of exactly their number,
   which replaces them */
static void gather(lua_State *L, int base, int n, int is_object) {
  int i, t;
  if (n == 0) {                                    /* an object whose members were all null, left out */
    lua_createtable(L, 0, 0);
    return;
  }
  /* set in the order read, so that of a key given twice the last value stays (as cjson keeps it) */
  if (is_object) lua_createtable(L, 0, n); else lua_createtable(L, n, 0);
  t = lua_gettop(L);
  for (i = 0; i < n; i++) {
    if (is_object) {
      lua_pushvalue(L, base + 1 + 2 * i);
      lua_pushvalue(L, base + 2 + 2 * i);
      lua_rawset(L, t);
    } else {
      lua_pushvalue(L, base + 1 + i);
      lua_rawseti(L, t, i + 1);
    }
  }
  lua_replace(L, base + 1);
  lua_settop(L, base + 1);
}

static int literal(jd *d, const char *word, size_t n) {
  if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0) return jfail(d, "invalid token");
  d->p += n;
  return 1;
}

/* at '{': pushes the table. With drop_nulls, a null member is set (as nil, removing the key) only when its key
   may have been given before in this object: `seen` has a bit per cache slot (mod 64) of every key given a
   value, and all of them after a key that was not in the cache; else it is skipped, as setting it would
   change nothing. */
static int decode_object(jd *d) {
  lua_State *L = d->L;
  strcache *sc = d->sc;
  int base = lua_gettop(L), n = 0, tbl = 0;   /* tbl: the table's index once made (n: members gathered) */
  int first = -1, set = 0;                    /* the first key's slot, and the members set (its size) */
  u64 seen = 0;
  if (++d->depth > MAX_DEPTH) return jfail(d, "too many nested data structures");
  d->p++;
  skip_ws(d);
  if (d->p < d->end && *d->p == '}') {
    d->p++;
    d->depth--;
    lua_createtable(L, 0, 0);
    return 1;
  }
  /* room for PENDING members (a key and a value each) and the table, checked once: past PENDING, each
     member is set as soon as it is read; a value needs at most two more while it is read, gather three */
  luaL_checkstack(L, 2 * PENDING + 4, "sigmamind.core: JSON too deep");
  for (;;) {
    const unsigned char *s, *q;
    u64 bit;
    if (d->p >= d->end || *d->p != '"') return jfail(d, "expected object key string");
    s = d->p + 1;
    q = scan_string(s, d->end);
    if (q < d->end && *q == '"' && (size_t)(q - s) - 1 < SC_LEN) {
      size_t kn = (size_t)(q - s);
      u64 head, tail;
      int hit;
      unsigned i = sc_find(sc, s, kn, d->end, &head, &tail, &hit);
      if (first < 0 && n == 0 && !tbl) {           /* the first key: a size known for objects starting so? */
        first = (int)i;
        if (hit && sc->size[i]) {
          lua_createtable(L, 0, sc->size[i]);
          tbl = base + 1;
        }
      }
      push_cached(d, s, kn, i, hit, head, tail);
      d->p = q + 1;
      bit = 1ull << (i & 63);
    } else {
      if (q < d->end && *q == '"') {               /* "" or longer than the cache takes */
        lua_pushlstring(L, (const char *)s, (size_t)(q - s));
        d->p = q + 1;
      } else if (!decode_escaped(d, s, q)) {
        return 0;
      }
      if (first < 0 && n == 0 && !tbl) first = SC_SLOTS;     /* no size is kept for such a first key */
      bit = ~0ull;
    }
    skip_ws(d);
    if (d->p >= d->end || *d->p != ':') return jfail(d, "expected colon");
    d->p++;
    skip_ws(d);
    if (d->drop_nulls && d->p < d->end && *d->p == 'n') {
      if (!literal(d, "null", 4)) return 0;
      if (!(seen & bit)) { lua_pop(L, 1); goto next; }   /* nothing to remove: left out */
      lua_pushnil(L);                              /* a key given before: its value removed, as read */
    } else {
      if (!decode_value(d)) return 0;
      seen |= bit;
      set++;
    }
    if (tbl) {
      lua_rawset(L, tbl);
    } else if (++n == PENDING) {
      gather(L, base, n, 1);
      tbl = base + 1;
    }
  next:
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
      skip_ws(d);
      continue;
    }
    if (d->p < d->end && *d->p == '}') break;
    return jfail(d, "expected comma or object end");
  }
  d->p++;
  d->depth--;
  if (!tbl) gather(L, base, n, 1);
  if (first >= 0 && first < SC_SLOTS) {          /* the size for next time: this one, or a bit less than the */
    int was = sc->size[first];                   /* last when that was more (a create's call, then a page's) */
    if (set < was - (was >> 2)) set = was - (was >> 2);
    sc->size[first] = (unsigned char)(set < 255 ? set : 255);
  }
  return 1;
}

/* at '[': pushes the table */
static int decode_array(jd *d) {
  lua_State *L = d->L;
  int base = lua_gettop(L), n = 0, tbl = 0;   /* tbl: the table's index once PENDING values were gathered */
  if (++d->depth > MAX_DEPTH) return jfail(d, "too many nested data structures");
  d->p++;
  skip_ws(d);
  if (d->p < d->end && *d->p == ']') {
    d->p++;
    d->depth--;
    lua_createtable(L, 0, 0);
    return 1;
  }
  luaL_checkstack(L, PENDING + 4, "sigmamind.core: JSON too deep");
  for (;;) {
    if (!decode_value(d)) return 0;
    n++;
    if (tbl) {
      lua_rawseti(L, tbl, n);
    } else if (n == PENDING) {
      gather(L, base, n, 0);
      tbl = base + 1;
    }
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
      skip_ws(d);
      continue;
    }
    if (d->p < d->end && *d->p == ']') break;
    return jfail(d, "expected comma or array end");
  }
  d->p++;
  d->depth--;
  if (!tbl) gather(L, base, n, 0);
  return 1;
}

/* at a non-space: pushes one value */
static int decode_value(jd *d) {
  if (d->p >= d->end) return jfail(d, "unexpected end of input, expected a value");
  switch (*d->p) {
    case '"': return decode_string(d, SC_VALUE);
    case '{': return decode_object(d);
    case '[': return decode_array(d);
    case 't': if (!literal(d, "true", 4)) return 0; lua_pushboolean(d->L, 1); return 1;
    case 'f': if (!literal(d, "false", 5)) return 0; lua_pushboolean(d->L, 0); return 1;
    case 'n': if (!literal(d, "null", 4)) return 0; sm_push_null(d->L); return 1;
    default:
      if (*d->p == '-' || IS_DIGIT(*d->p)) return decode_number(d);
      return jfail(d, "invalid token");
  }
}

/* pushes the cache's table (made the first time) and returns its C part */
static strcache *push_cache(lua_State *L) {
  strcache *sc;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_key) == LUA_TTABLE) {
    lua_rawgeti(L, -1, SC_SLOTS + 1);
    sc = (strcache *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    return sc;
  }
  lua_pop(L, 1);
  lua_createtable(L, SC_SLOTS + 1, 0);
  sc = (strcache *)lua_newuserdatauv(L, sizeof *sc, 0);
  memset(sc, 0, sizeof *sc);
  lua_rawseti(L, -2, SC_SLOTS + 1);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &cache_key);
  return sc;
}

int sm_json_decode(lua_State *L, const char *s, size_t len) {
  return sm_json_decode_opt(L, s, len, 0);
}

int sm_json_decode_opt(lua_State *L, const char *s, size_t len, int drop_nulls) {
  jd d;
  int base = lua_gettop(L);
  d.L = L;
  d.drop_nulls = drop_nulls;
  d.start = d.p = (const unsigned char *)s;
  d.end = d.p + len;
  d.depth = 0;
  d.err = NULL;
  luaL_checkstack(L, 8, "sigmamind.core: out of stack space");
  d.sc = push_cache(L);
  d.sc_tbl = base + 1;
  skip_ws(&d);
  if (decode_value(&d)) {
    skip_ws(&d);
    if (d.p == d.end) {
      lua_replace(L, base + 1);                    /* the value, over the cache's table */
      return 1;
    }
    d.err = "trailing characters after the value";
  }
  lua_settop(L, base);
  lua_pushnil(L);
  lua_pushfstring(L, "%s at character %I", d.err, (LUA_INTEGER)(d.p - d.start) + 1);
  return 0;
}

/* core.json_encode(v) --> s | nil, msg */
int l_core_json_encode(lua_State *L) {
  luaL_checkany(L, 1);
  if (sm_json_encode(L, 1)) return 1;
  return 2;
}

/* core.json_decode(s [, { keep_nulls = false }]) --> value | nil, msg. By default null is core.null everywhere,
   as cjson reads it; keep_nulls = false leaves out object members that are null, as the client's records do. */
int l_core_json_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  int drop = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      if (lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), "keep_nulls") != 0) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : luaL_typename(L, -2);
        luaL_argerror(L, 2, lua_pushfstring(L, "unknown option '%s' (expected keep_nulls)", k));
      }
      if (lua_type(L, -1) != LUA_TBOOLEAN)
        luaL_argerror(L, 2, lua_pushfstring(L, "keep_nulls: expected a boolean, got %s", luaL_typename(L, -1)));
      drop = !lua_toboolean(L, -1);
      lua_pop(L, 1);
    }
  }
  lua_settop(L, 1);
  if (sm_json_decode_opt(L, s, len, drop)) return 1;
  return 2;
}
