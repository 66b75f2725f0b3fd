/* error.c: the one error constructor (core.error, used by C and by Lua) and the error metatable's __tostring:
   "sigmamind: POST /v1/calls: 400 Bad Request: Invalid request parameters". */
#include <string.h>
#include "error.h"

static const struct { long status; const char *phrase; } phrases[] = {
  { 400, "Bad Request" }, { 401, "Unauthorized" }, { 402, "Payment Required" }, { 403, "Forbidden" },
  { 404, "Not Found" }, { 405, "Method Not Allowed" }, { 406, "Not Acceptable" }, { 408, "Request Timeout" },
  { 409, "Conflict" }, { 410, "Gone" }, { 411, "Length Required" }, { 412, "Precondition Failed" },
  { 413, "Payload Too Large" }, { 414, "URI Too Long" }, { 415, "Unsupported Media Type" },
  { 422, "Unprocessable Entity" }, { 425, "Too Early" }, { 429, "Too Many Requests" },
  { 500, "Internal Server Error" }, { 501, "Not Implemented" }, { 502, "Bad Gateway" },
  { 503, "Service Unavailable" }, { 504, "Gateway Timeout" }, { 0, NULL }
};

const char *sm_reason_phrase(long status) {
  int i;
  for (i = 0; phrases[i].phrase; i++)
    if (phrases[i].status == status) return phrases[i].phrase;
  return NULL;
}

/* the kinds that an HTTP status explains by itself */
static int status_kind(const char *kind) {
  return strcmp(kind, "auth") == 0 || strcmp(kind, "not_found") == 0 || strcmp(kind, "rejected") == 0 ||
         strcmp(kind, "rate_limited") == 0 || strcmp(kind, "server") == 0;
}

static const char *field_str(lua_State *L, int idx, const char *name) {
  const char *s;
  lua_getfield(L, idx, name);
  s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  lua_pop(L, 1);   /* still anchored in the error table */
  return s;
}

/* a count or status field as an integer: a float within +-2^53 truncated; NaN, an infinity or a larger float
   (whose cast would be undefined behaviour) reads as 0, which is not shown */
static lua_Integer field_int(lua_State *L, int idx, const char *name) {
  lua_Integer v = 0;
  lua_getfield(L, idx, name);
  if (lua_isinteger(L, -1)) {
    v = lua_tointeger(L, -1);
  } else if (lua_type(L, -1) == LUA_TNUMBER) {
    double d = lua_tonumber(L, -1);
    if (d >= -9007199254740992.0 && d <= 9007199254740992.0) v = (lua_Integer)d;
  }
  lua_pop(L, 1);
  return v;
}

static int l_error_tostring(lua_State *L) {
  luaL_Buffer b;
  const char *kind, *method, *path, *message;
  lua_Integer status, attempts;
  luaL_checktype(L, 1, LUA_TTABLE);
  kind = field_str(L, 1, "kind");
  method = field_str(L, 1, "method");
  path = field_str(L, 1, "path");
  message = field_str(L, 1, "message");
  status = field_int(L, 1, "status");
  attempts = field_int(L, 1, "attempts");
  if (!kind) kind = "error";
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "sigmamind: ");
  if (method || path) {
    if (method) { luaL_addstring(&b, method); luaL_addchar(&b, ' '); }
    if (path) luaL_addstring(&b, path);
    luaL_addstring(&b, ": ");
  }
  if (status > 0 && status_kind(kind)) {
    const char *phrase = status < 1000 ? sm_reason_phrase((long)status) : NULL;
    lua_pushfstring(L, "%I", status);
    luaL_addvalue(&b);
    if (phrase) { luaL_addchar(&b, ' '); luaL_addstring(&b, phrase); }
  } else {
    luaL_addstring(&b, kind);
  }
  if (message && *message) { luaL_addstring(&b, ": "); luaL_addstring(&b, message); }
  if (attempts > 1) {
    lua_pushfstring(L, " (after %I attempts)", attempts);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  return 1;
}

void sm_error_init(lua_State *L) {
  luaL_newmetatable(L, SM_ERROR_MT);
  lua_pushcfunction(L, l_error_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}

void sm_error_setmeta(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  luaL_getmetatable(L, SM_ERROR_MT);
  lua_setmetatable(L, idx);
}

/* core.error(fields): a copy of fields with the error metatable; kind is required */
int l_core_error(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "kind");
  if (lua_type(L, -1) != LUA_TSTRING) luaL_argerror(L, 1, "an error needs a string 'kind'");
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  luaL_setmetatable(L, SM_ERROR_MT);
  return 1;
}

int l_core_is_error(lua_State *L) {
  int is = 0;
  if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
    luaL_getmetatable(L, SM_ERROR_MT);
    is = lua_rawequal(L, -1, -2);
  }
  lua_pushboolean(L, is);
  return 1;
}

void sm_push_invalid(lua_State *L, const char *method, const char *path, const char *field) {
  lua_createtable(L, 0, 10);
  lua_insert(L, -2);
  lua_setfield(L, -2, "message");
  lua_pushliteral(L, "invalid"); lua_setfield(L, -2, "kind");
  if (field) { lua_pushstring(L, field); lua_setfield(L, -2, "field"); }
  lua_pushstring(L, method); lua_setfield(L, -2, "method");
  lua_pushstring(L, path); lua_setfield(L, -2, "path");
  lua_pushinteger(L, 0); lua_setfield(L, -2, "attempts");
  lua_pushnumber(L, 0); lua_setfield(L, -2, "elapsed");
  lua_pushboolean(L, 0); lua_setfield(L, -2, "retryable");
  lua_pushboolean(L, 0); lua_setfield(L, -2, "sent");
  luaL_setmetatable(L, SM_ERROR_MT);
}
