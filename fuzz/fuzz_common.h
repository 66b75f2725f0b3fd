/* fuzz_common.h: what every harness shares: one embedded Lua 5.4 state with sigmamind.core linked in
   statically (preloaded, so luaopen_sigmamind_core and the sm_* functions are the instrumented copies) and
   the Lua layer reachable from SM_LUA_DIR. A Lua error escaping a harness is a finding: abort() shows it. */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lua.h"
#include "lualib.h"
#include "lauxlib.h"
#include "crypto.h"
#include "encode.h"
#include "error.h"
#include "json.h"
#include "request.h"
#include "validate.h"

#ifndef SM_LUA_DIR
#define SM_LUA_DIR "lua"
#endif

int luaopen_sigmamind_core(lua_State *L);
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *fuzz_L;

static lua_State *fuzz_state(void) {
  lua_State *L = luaL_newstate();
  if (!L) abort();
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_sigmamind_core);
  lua_setfield(L, -2, "sigmamind.core");
  lua_pop(L, 1);
  lua_getglobal(L, "package");
  lua_pushliteral(L, SM_LUA_DIR "/?.lua;" SM_LUA_DIR "/?/init.lua");
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "sigmamind.core");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) { fprintf(stderr, "fuzz: %s\n", lua_tostring(L, -1)); abort(); }
  lua_setglobal(L, "core");
  return L;
}

/* runs the C function f under lua_pcall with the n values on top of the stack; a raised error aborts */
static void fuzz_pcall(lua_State *L, lua_CFunction f, int n, int nres) {
  lua_pushcfunction(L, f);
  lua_insert(L, -(n + 1));
  if (lua_pcall(L, n, nres, 0) != LUA_OK) {
    fprintf(stderr, "fuzz: unexpected Lua error: %s\n", lua_tostring(L, -1));
    abort();
  }
}

/* a byte reader over the input */
typedef struct fuzz_in { const uint8_t *p; size_t n; } fuzz_in;

static unsigned fuzz_byte(fuzz_in *in) {
  unsigned b;
  if (in->n == 0) return 0;
  b = *in->p++;
  in->n--;
  return b;
}

/* a length-prefixed string: one length byte (0-255) then that many bytes, or fewer at the end */
static const char *fuzz_bytes(fuzz_in *in, size_t *len) {
  size_t n = fuzz_byte(in);
  const char *s = (const char *)in->p;      /* after the length byte: it is not part of the string */
  if (n > in->n) n = in->n;
  in->p += n;
  in->n -= n;
  *len = n;
  return s;
}

/* runs a reader harness's `run(in)` (a fuzz_in * as light userdata) over the input */
static void fuzz_read(lua_CFunction run, const uint8_t *data, size_t size) {
  fuzz_in in;
  in.p = data;
  in.n = size;
  lua_pushlightuserdata(fuzz_L, &in);
  fuzz_pcall(fuzz_L, run, 1, 0);
}

/* every 4096 runs, a full collection: the state is reused across inputs */
static void fuzz_end(lua_State *L) {
  static unsigned runs;
  lua_settop(L, 0);
  if (++runs % 4096 == 0) lua_gc(L, LUA_GCCOLLECT, 0);
}

/* The entry points of a harness whose `run(copy, size)` reads an exact-size copy of the input, so that any read
   past its end is caught. */
#define FUZZ_COPY_HARNESS(run)                                                                                 \
  int LLVMFuzzerInitialize(int *argc, char ***argv) {                                                          \
    (void)argc; (void)argv;                                                                                    \
    fuzz_L = fuzz_state();                                                                                     \
    return 0;                                                                                                  \
  }                                                                                                            \
  int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {                                               \
    char *copy = (char *)malloc(size ? size : 1);                                                              \
    if (!copy) abort();                                                                                        \
    if (size) memcpy(copy, data, size);                                                                        \
    lua_pushlightuserdata(fuzz_L, copy);                                                                       \
    lua_pushinteger(fuzz_L, (lua_Integer)size);                                                                \
    fuzz_pcall(fuzz_L, run, 2, 0);                                                                             \
    free(copy);                                                                                                \
    fuzz_end(fuzz_L);                                                                                          \
    return 0;                                                                                                  \
  }

#endif
