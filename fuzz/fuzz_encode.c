/* fuzz_encode.c: path and query encoding (encode.c) and the path argument check on raw bytes:
   sm_add_escaped must emit only unreserved characters and %XX and decode back to the input;
   sm_push_masked_path must never read or write outside the path; sm_validate_arg and sm_is_e164 agree
   with a plain reference; sm_push_query on a one-key table round-trips the value. */
#include "fuzz_common.h"

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

/* checks that enc (len elen) is a valid escaping of s and decodes to it */
static void check_escaped(const char *enc, size_t elen, const char *s, size_t len) {
  size_t i = 0, o = 0;
  while (i < elen) {
    unsigned char c = (unsigned char)enc[i];
    int v;
    if (c == '%') {
      if (i + 2 >= elen) abort();
      v = hexval(enc[i + 1]) * 16 + hexval(enc[i + 2]);
      if (hexval(enc[i + 1]) < 0 || hexval(enc[i + 2]) < 0 || unreserved((unsigned char)v)) abort();
      i += 3;
    } else {
      if (!unreserved(c)) abort();
      v = c;
      i++;
    }
    if (o >= len || (unsigned char)s[o] != (unsigned char)v) abort();
    o++;
  }
  if (o != len) abort();
}

/* no phone number survives masking: after a '+', never more than four digits in a row */
static void check_masked(const char *m, size_t len) {
  size_t i, run = 0;
  int plus = 0;
  for (i = 0; i < len; i++) {
    if (m[i] == '+') { plus = 1; run = 0; continue; }
    if (plus && m[i] >= '0' && m[i] <= '9') { if (++run > 4) abort(); continue; }
    plus = 0;
    run = 0;
  }
}

static int ref_e164(const char *s, size_t len) {
  size_t i;
  if (len < 8 || len > 16 || s[0] != '+' || s[1] == '0') return 0;
  for (i = 1; i < len; i++) if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

static int run(lua_State *L) {
  const char *s = (const char *)lua_touserdata(L, 1);
  size_t len = (size_t)lua_tointeger(L, 2), elen, mlen;
  const char *enc, *masked;
  luaL_Buffer b;
  int i;
  const sm_endpoint *ep;

  luaL_buffinit(L, &b);
  sm_add_escaped(&b, s, len);
  luaL_pushresult(&b);
  enc = lua_tolstring(L, -1, &elen);
  check_escaped(enc, elen, s, len);

  /* masked paths: raw bytes and the encoded form (where %2B+digits appear) */
  sm_push_masked_path(L, s, len);
  lua_pop(L, 1);
  sm_push_masked_path(L, enc, elen);           /* the only '+' left in an encoded path is the mask's */
  masked = lua_tolstring(L, -1, &mlen);
  check_masked(masked, mlen);
  lua_pop(L, 1);

  if (sm_is_e164(s, len) != ref_e164(s, len)) abort();

  /* the path argument check for each kind of endpoint: 1, or 0 with a message pushed */
  for (i = 0; (ep = sm_endpoint_at(i)) != NULL; i++) {
    int top = lua_gettop(L);
    if (!ep->arg) continue;
    if (!sm_validate_arg(L, ep, s, len)) {
      if (lua_gettop(L) != top + 1 || lua_type(L, -1) != LUA_TSTRING) abort();
      lua_pop(L, 1);
    } else if (lua_gettop(L) != top) abort();
  }

  /* the query string of { [extra key] = value } for a GET endpoint: "?<escaped key>=<escaped value>" */
  ep = sm_endpoint_find("calls.list");
  {
    const char *field = NULL, *q;
    size_t qlen, half = len / 2;
    int top = lua_gettop(L), params;
    lua_createtable(L, 0, 2);
    params = lua_gettop(L);
    lua_pushlstring(L, s, half);
    lua_pushlstring(L, s + half, len - half);
    lua_rawset(L, params);
    lua_pushliteral(L, "status");                 /* a declared field too: declared go first */
    lua_pushlstring(L, s, len);
    lua_rawset(L, params);
    if (!sm_push_query(L, ep, params, &field)) {
      /* the one refusal possible here: a name with a NUL byte */
      if (memchr(s, '\0', half) == NULL || strcmp(field, "params") != 0) abort();
      lua_settop(L, top);
      return 0;
    }
    q = lua_tolstring(L, -1, &qlen);
    if (qlen == 0 || q[0] != '?') abort();
    if (lua_gettop(L) != top + 2) abort();
    lua_settop(L, top);
  }
  return 0;
}

FUZZ_COPY_HARNESS(run)
