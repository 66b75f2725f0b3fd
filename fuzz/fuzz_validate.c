/* fuzz_validate.c: core.validate(name, params, args) with a params table built from the input: the field
   checks (validate.c), the path argument check and path encoding, the JSON body encode and the query string
   (encode.c), and the invalid error's __tostring. Must never raise: a table of any shape gets nil, err.
   core.prepare agrees with core.validate, and what it would send carries no NUL byte and only valid UTF-8.
   With mode bit 16 the params table is given an __index answering every name: nothing may change (tables
   are read raw, so what is validated is what is sent). With mode bit 32 the input's tail goes into the
   request's extra_body (or extra_query), whose names are not checked: what would be sent must still be clean. */
#include "fuzz_common.h"

static int nendpoints;


/* pushes one value chosen and shaped by the input */
static void push_value(lua_State *L, fuzz_in *in, int depth) {
  size_t len;
  const char *s;
  switch (fuzz_byte(in) % 10) {
    case 0: case 1:
      s = fuzz_bytes(in, &len); lua_pushlstring(L, s, len); break;
    case 2: {
      lua_Integer v = 0;
      unsigned i, k = fuzz_byte(in) % 9;
      for (i = 0; i < k; i++) v = (lua_Integer)(((lua_Unsigned)v << 8) | fuzz_byte(in));
      if ((fuzz_byte(in) & 1) && v != LUA_MININTEGER) v = -v;   /* -LUA_MININTEGER does not exist */
      lua_pushinteger(L, v);
      break;
    }
    case 3: {
      double d;
      unsigned char b[8];
      unsigned i;
      for (i = 0; i < 8; i++) b[i] = (unsigned char)fuzz_byte(in);
      memcpy(&d, b, sizeof d);
      lua_pushnumber(L, d);
      break;
    }
    case 4: lua_pushboolean(L, fuzz_byte(in) & 1); break;
    case 5: lua_pushlightuserdata(L, NULL); break;           /* core.null */
    case 6: case 7: {
      unsigned i, n = fuzz_byte(in) % 8;
      int array = fuzz_byte(in) & 1;
      lua_createtable(L, 0, 0);
      if (depth > 4) break;
      for (i = 0; i < n; i++) {
        if (array) lua_pushinteger(L, (lua_Integer)i + 1);
        else { s = fuzz_bytes(in, &len); lua_pushlstring(L, s, len); }
        push_value(L, in, depth + 1);
        lua_rawset(L, -3);
      }
      break;
    }
    case 8: lua_pushcfunction(L, luaopen_sigmamind_core); break;
    default: lua_pushinteger(L, (lua_Integer)fuzz_byte(in) * 7 - 3); break;
  }
}


/* __index of the shadowed params: a fresh string for every name (a valid phone number, which would satisfy
   the required fields if anything read through it) */
static int index_any(lua_State *L) {
  lua_pushfstring(L, "+1415555%d", 2671);
  return 1;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* the URL path and query as the server decodes them: no NUL, valid UTF-8 */
static void check_url(const char *u, size_t len) {
  char *d = (char *)malloc(len + 1);
  size_t i, n = 0;
  if (!d) abort();
  for (i = 0; i < len; i++) {
    if (u[i] == '%') {
      if (i + 2 >= len || hexval(u[i + 1]) < 0 || hexval(u[i + 2]) < 0) abort();
      d[n++] = (char)(hexval(u[i + 1]) * 16 + hexval(u[i + 2]));
      i += 2;
    } else {
      d[n++] = u[i];
    }
  }
  if (memchr(d, '\0', n) || !sm_utf8_valid(d, n)) abort();
  free(d);
}

/* a JSON body: valid UTF-8, and no string in it has a NUL (written \u0000 by the encoder) */
static void check_body(const char *b, size_t len) {
  size_t i;
  if (!sm_utf8_valid(b, len)) abort();
  for (i = 0; i < len; i++) {
    if (b[i] != '\\') continue;
    if (i + 5 < len && memcmp(b + i + 1, "u0000", 5) == 0) abort();
    i++;                                          /* the escaped character */
  }
}

/* core.prepare(name, args, params) with slots 1-3 (name, params, args; args only where the endpoint takes
   one): pushes its three results */
static void prepare(lua_State *L, const sm_endpoint *ep) {
  lua_getglobal(L, "core");
  lua_getfield(L, -1, "prepare");
  lua_remove(L, -2);
  lua_pushvalue(L, 1);
  if (ep->arg) lua_pushvalue(L, 3); else lua_pushnil(L);
  lua_pushvalue(L, 2);
  lua_getglobal(L, "fuzz_opts");
  lua_call(L, 4, 3);
}

/* 1 when the values at a and b are equal strings, or both not strings and the same type */
static int same(lua_State *L, int a, int b) {
  size_t la, lb;
  const char *sa, *sb;
  if (lua_type(L, a) != lua_type(L, b)) return 0;
  if (lua_type(L, a) != LUA_TSTRING) return 1;
  sa = lua_tolstring(L, a, &la);
  sb = lua_tolstring(L, b, &lb);
  return la == lb && memcmp(sa, sb, la) == 0;
}

static int run(lua_State *L) {
  fuzz_in *in = (fuzz_in *)lua_touserdata(L, 1);
  const sm_endpoint *ep = sm_endpoint_at((int)(fuzz_byte(in) % (unsigned)nendpoints));
  unsigned mode = fuzz_byte(in);
  int nfields = 0;
  size_t len;
  const char *s;
  while (ep->fields[nfields].name) nfields++;
  lua_settop(L, 0);
  lua_pushstring(L, ep->name);                                 /* 1: name */
  if (mode & 1) lua_pushnil(L);                                 /* 2: params */
  else {
    unsigned left = (mode & 32) ? fuzz_byte(in) % 8 : ~0u;   /* the rest for extra_body/extra_query */
    lua_newtable(L);
    while (in->n > 0 && left-- > 0) {
      unsigned k = fuzz_byte(in);
      if (k < 0xE0 && nfields > 0) lua_pushstring(L, ep->fields[k % (unsigned)nfields].name);
      else if (k == 0xFF) lua_pushinteger(L, (lua_Integer)fuzz_byte(in));
      else { s = fuzz_bytes(in, &len); lua_pushlstring(L, s, len); }
      push_value(L, in, 0);
      lua_rawset(L, 2);
    }
  }
  if (mode & 2) lua_pushnil(L);                                 /* 3: args */
  else {
    lua_createtable(L, 1, 0);
    if (mode & 4) lua_pushstring(L, "+14155552671");
    else if (mode & 8) lua_pushliteral(L, "call_1");
    else { s = fuzz_bytes(in, &len); lua_pushlstring(L, s, len); }
    lua_rawseti(L, -2, 1);
  }
  if (mode & 32) {                                              /* the request's options, a global */
    lua_createtable(L, 0, 1);
    lua_newtable(L);
    while (in->n > 0) {
      unsigned k = fuzz_byte(in);
      if (k == 0xFF) lua_pushinteger(L, (lua_Integer)fuzz_byte(in));
      else { s = fuzz_bytes(in, &len); lua_pushlstring(L, s, len); }
      push_value(L, in, 0);
      lua_rawset(L, -3);
    }
    lua_setfield(L, -2, ep->body ? "extra_body" : "extra_query");
  } else {
    lua_pushnil(L);
  }
  lua_setglobal(L, "fuzz_opts");
  /* params first: the fields go in before the args byte is read, so the args come from the tail */
  lua_pushcfunction(L, l_core_validate);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_getglobal(L, "fuzz_opts");
  lua_call(L, 4, 2);                                            /* 4, 5: ok | nil, err */
  if (!lua_toboolean(L, 4)) {
    /* nil, err: an invalid error with a message, and its __tostring works */
    if (lua_type(L, 5) != LUA_TTABLE) abort();
    lua_getfield(L, 5, "kind");
    if (!lua_isstring(L, -1) || strcmp(lua_tostring(L, -1), "invalid") != 0) abort();
    lua_pop(L, 1);
    lua_getfield(L, 5, "message");
    if (lua_type(L, -1) != LUA_TSTRING) abort();
    lua_replace(L, 5);                                          /* 5: the message */
    luaL_tolstring(L, 4, NULL);
    lua_pop(L, 1);
  }
  if (ep->arg && lua_isnil(L, 3)) return 0;                     /* a template: prepare needs the argument */
  prepare(L, ep);                                               /* 6, 7, 8: method, url, body | nil, err */
  if (lua_isnil(L, 6) != !lua_toboolean(L, 4)) abort();         /* validate and prepare agree */
  if (!lua_isnil(L, 6)) {
    size_t ulen, blen;
    const char *u = lua_tolstring(L, 7, &ulen), *b;
    check_url(u, ulen);
    if (lua_type(L, 8) == LUA_TSTRING) { b = lua_tolstring(L, 8, &blen); check_body(b, blen); }
  } else {
    lua_getfield(L, 7, "message");
    lua_replace(L, 7);                                          /* 7: prepare's message */
  }
  if ((mode & 16) && lua_type(L, 2) == LUA_TTABLE) {
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, index_any);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, 2);
    prepare(L, ep);                                             /* 9, 10, 11 */
    if (!same(L, 6, 9) || !same(L, 8, 11)) abort();
    if (!lua_isnil(L, 9) && !same(L, 7, 10)) abort();
    if (lua_isnil(L, 9)) {
      lua_getfield(L, 10, "message");
      if (!same(L, 7, -1)) abort();
    }
  }
  return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  fuzz_L = fuzz_state();
  while (sm_endpoint_at(nendpoints)) nendpoints++;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_read(run, data, size);
  fuzz_end(fuzz_L);
  return 0;
}
