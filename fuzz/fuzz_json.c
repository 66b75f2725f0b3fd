/* fuzz_json.c: JSON response handling in the core (json.c), differentially. sm_json_decode (our decoder) and
   lua-cjson's decode read the same bytes and must agree: both accept, with equal values (numbers compared as
   doubles; cjson makes every number a float, ours an integer when it is integral within +-2^53, which is also
   checked), or both refuse. The one allowed difference: cjson takes a NUL byte outside a string for the end of
   the text and accepts what came before it; ours refuses. Then our value is encoded by our encoder and
   decoded by ours again, which must give it back exactly, every number to the last bit. Read again leaving
   out null members (what the client does unless keep_nulls), it must be that value without its objects'
   null members, arrays unchanged. */
#include <math.h>
#include "fuzz_common.h"

static void check_integers(lua_State *L, int idx, int depth) {
  if (lua_type(L, idx) == LUA_TNUMBER && !lua_isinteger(L, idx)) {
    double d = lua_tonumber(L, idx);
    if (d == floor(d) && fabs(d) <= 9007199254740992.0) abort();
  }
  if (lua_type(L, idx) != LUA_TTABLE || depth > 1000) return;
  luaL_checkstack(L, 4, "deep");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    check_integers(L, lua_gettop(L), depth + 1);
    lua_pop(L, 1);
  }
}

/* 1 when the values at a and b are equal as JSON values; numbers within 1e-12 of each other when tolerant */
static int same(lua_State *L, int a, int b, int depth, int tolerant) {
  int t = lua_type(L, a), n = 0, m = 0, ok = 1;
  if (t != lua_type(L, b)) return 0;
  switch (t) {
    case LUA_TNUMBER: {
      double x = lua_tonumber(L, a), y = lua_tonumber(L, b);
      return x == y || (tolerant && fabs(x - y) <= 1e-12 * fmax(fabs(x), fabs(y)));
    }
    case LUA_TSTRING: case LUA_TBOOLEAN: case LUA_TLIGHTUSERDATA: return lua_rawequal(L, a, b);
    case LUA_TTABLE: break;
    default: return 0;
  }
  if (depth > 1000) return 1;
  luaL_checkstack(L, 6, "deep");
  lua_pushnil(L);
  while (ok && lua_next(L, a)) {
    n++;
    lua_pushvalue(L, -2);
    lua_rawget(L, b);
    ok = same(L, lua_gettop(L) - 1, lua_gettop(L), depth + 1, tolerant);
    lua_pop(L, 2);
  }
  if (!ok) { lua_pop(L, 1); return 0; }
  lua_pushnil(L);
  while (lua_next(L, b)) { m++; lua_pop(L, 1); }
  return n == m;
}

/* removes every object member whose value is null (an array's keys are integers: its nulls stay) */
static void prune(lua_State *L, int idx, int depth) {
  if (lua_type(L, idx) != LUA_TTABLE || depth > 1000) return;
  luaL_checkstack(L, 6, "deep");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TLIGHTUSERDATA && !lua_touserdata(L, -1)) {
      lua_pushvalue(L, -2);
      lua_pushnil(L);
      lua_rawset(L, idx);                          /* clearing a field while traversing is allowed */
    } else {
      prune(L, lua_gettop(L), depth + 1);
    }
    lua_pop(L, 1);
  }
}

static int run(lua_State *L) {
  const char *s = (const char *)lua_touserdata(L, 1);
  size_t len = (size_t)lua_tointeger(L, 2);
  int top = lua_gettop(L), ours, theirs;
  ours = sm_json_decode(L, s, len);                 /* top+1: value, or nil and top+2: message */
  if (ours ? lua_gettop(L) != top + 1 : (lua_gettop(L) != top + 2 || !lua_isnil(L, -2))) {
    fprintf(stderr, "fuzz_json: decode returned %d and left %d values, expected %s\n", ours, lua_gettop(L) - top,
            ours ? "1" : "2 (nil, message)");
    abort();
  }
  if (!ours) lua_pop(L, 1);
  lua_getglobal(L, "cjson_decode");
  lua_pushlstring(L, s, len);
  lua_call(L, 1, 2);                                /* value or nil, message */
  theirs = lua_isnil(L, -1);                        /* no message: it decoded (null is cjson.null, not nil) */
  lua_pop(L, 1);
  if (ours && !theirs) abort();
  if (!ours && theirs && memchr(s, '\0', len) == NULL) abort();
  if (!ours) return 0;
  check_integers(L, top + 1, 0);
  if (!same(L, top + 1, top + 2, 0, 0)) abort();
  if (sm_json_encode(L, top + 1)) {                 /* a value of ours, written by ours, read by ours */
    size_t elen;
    const char *e = lua_tolstring(L, -1, &elen);
    if (!sm_json_decode(L, e, elen) || !same(L, top + 1, lua_gettop(L), 0, 0)) abort();
  } else {                        /* a decoded value is refused only for a number out of range (1e400) */
    const char *msg = lua_tostring(L, -1);
    if (!msg || strstr(msg, "must not be NaN or Inf") == NULL) abort();
  }
  if (!sm_json_decode_opt(L, s, len, 1)) abort();
  prune(L, top + 1, 0);
  if (!same(L, top + 1, lua_gettop(L), 0, 0)) abort();
  return 0;
}

static void init_cjson(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cjson.safe");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "new");
  lua_call(L, 0, 1);
  lua_getfield(L, -1, "decode_invalid_numbers");   /* as the core had it: JSON's numbers only, no hex or inf */
  lua_pushboolean(L, 0);
  lua_call(L, 1, 0);
  lua_getfield(L, -1, "decode");
  lua_setglobal(L, "cjson_decode");
  lua_pop(L, 2);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  fuzz_L = fuzz_state();
  init_cjson(fuzz_L);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *copy = (char *)malloc(size ? size : 1);
  if (!copy) abort();
  if (size) memcpy(copy, data, size);
  lua_pushlightuserdata(fuzz_L, copy);
  lua_pushinteger(fuzz_L, (lua_Integer)size);
  fuzz_pcall(fuzz_L, run, 2, 0);
  free(copy);
  fuzz_end(fuzz_L);
  return 0;
}
