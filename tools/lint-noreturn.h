/* lint-noreturn.h: force-included by `make lint` for clang-tidy only. The Lua API's raising functions never
   return (they longjmp), but lauxlib.h cannot say so portably; without this the static analyzer follows
   paths past luaL_error and reports null dereferences that cannot happen. */
#include "lua.h"
#include "lauxlib.h"

__attribute__((noreturn)) int lua_error(lua_State *L);
__attribute__((noreturn)) int luaL_error(lua_State *L, const char *fmt, ...);
__attribute__((noreturn)) int luaL_argerror(lua_State *L, int arg, const char *extramsg);
__attribute__((noreturn)) int luaL_typeerror(lua_State *L, int arg, const char *tname);
