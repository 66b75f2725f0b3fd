/* encode.c: percent-encoding of path segments and query strings (RFC 3986: all but unreserved is %XX),
   and the masked path shown to on_event. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "sm.h"

static const char hexdigits[] = "0123456789ABCDEF";

static int unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

void sm_add_escaped(luaL_Buffer *b, const char *s, size_t len) {
  size_t i;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (unreserved(c)) luaL_addchar(b, (char)c);
    else {
      char *p = luaL_prepbuffsize(b, 3);
      p[0] = '%'; p[1] = hexdigits[c >> 4]; p[2] = hexdigits[c & 15];
      luaL_addsize(b, 3);
    }
  }
}

/* 1 when the value at the top of the stack has a query form (a string, a boolean or a finite number); else 0
   with a message pushed above it */
static int queryable(lua_State *L, const char *key) {
  switch (lua_type(L, -1)) {
    case LUA_TSTRING: case LUA_TBOOLEAN: return 1;
    case LUA_TNUMBER: {
      double d = lua_tonumber(L, -1);
      if (lua_isinteger(L, -1) || (d == d && d != HUGE_VAL && d != -HUGE_VAL)) return 1;
      break;
    }
    default: break;
  }
  lua_pushfstring(L, "%s: expected a string, number or boolean in the query, got %s", key,
                  lua_type(L, -1) == LUA_TLIGHTUSERDATA ? "null" : luaL_typename(L, -1));
  return 0;
}

/* Adds "<sep>key=value" for the value at the top of the stack (popped), which queryable() accepted. The value is
   popped before the buffer is touched (luaL_Buffer stack discipline). */
static void add_value(lua_State *L, luaL_Buffer *b, const char *key, char sep) {
  char tmp[64];
  size_t len = 0;
  const char *s;
  if (lua_type(L, -1) == LUA_TSTRING) {      /* anchored by the params table, so it survives the pop */
    s = lua_tolstring(L, -1, &len);
  } else if (lua_type(L, -1) == LUA_TBOOLEAN) {
    s = lua_toboolean(L, -1) ? "true" : "false";
    len = strlen(s);
  } else {
    if (lua_isinteger(L, -1)) len = (size_t)snprintf(tmp, sizeof tmp, LUA_INTEGER_FMT, lua_tointeger(L, -1));
    else {
      double d = lua_tonumber(L, -1);
      if (d == floor(d) && fabs(d) <= 9007199254740992.0) len = (size_t)snprintf(tmp, sizeof tmp, "%.0f", d);
      else len = (size_t)snprintf(tmp, sizeof tmp, "%.17g", d);
    }
    s = tmp;
  }
  lua_pop(L, 1);
  luaL_addchar(b, sep);
  sm_add_escaped(b, key, strlen(key));
  luaL_addchar(b, '=');
  sm_add_escaped(b, s, len);
}

static int declared(const sm_endpoint *ep, const char *k) {
  const sm_field *f;
  for (f = ep->fields; f->name; f++)
    if (strcmp(f->name, k) == 0) return 1;
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Pushes the query string "?k=v&..." ("" when there are no params): declared params first (table order), then
   the others sorted by name. Returns 1, or 0 with a message pushed and the offending key in *field. */
int sm_push_query(lua_State *L, const sm_endpoint *ep, int params, const char **field) {
  const sm_field *f;
  char sep = '?';
  size_t nextra = 0, i;
  const char **extra;
  luaL_Buffer b;
  int base;
  if (lua_isnoneornil(L, params)) { lua_pushliteral(L, ""); return 1; }
  params = lua_absindex(L, params);
  base = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, params)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      lua_pushliteral(L, "params: query parameter names must be strings");
      *field = "params";
      return 0;
    }
    if (strlen(lua_tostring(L, -1)) != lua_rawlen(L, -1)) {   /* looked up below as C strings */
      lua_pop(L, 1);
      lua_pushliteral(L, "params: query parameter names must not contain NUL bytes");
      *field = "params";
      return 0;
    }
    if (!declared(ep, lua_tostring(L, -1))) nextra++;
  }
  /* scratch array for the unknown keys (anchored in params) as a userdata below the buffer: nothing leaks if
     anything raises, and the buffer's stack discipline is kept */
  extra = (const char **)lua_newuserdatauv(L, (nextra ? nextra : 1) * sizeof *extra, 0);
  i = 0;
  lua_pushnil(L);
  while (lua_next(L, params)) {
    const char *k;
    lua_pop(L, 1);
    k = lua_tostring(L, -1);
    if (!declared(ep, k) && i < nextra) extra[i++] = k;
  }
  nextra = i;
  qsort(extra, nextra, sizeof *extra, cmp_str);
  /* every value checked before the buffer opens: a buffer is never abandoned (in Lua 5.4 its box is a
     to-be-closed slot, which Lua 5.4.4's lua_settop mishandles when closing it moves the stack) */
  for (f = ep->fields; f->name; f++) {
    if (lua_getfield(L, params, f->name) != LUA_TNIL && !queryable(L, f->name)) { *field = f->name; goto fail; }
    lua_pop(L, 1);
  }
  for (i = 0; i < nextra; i++) {
    lua_getfield(L, params, extra[i]);
    if (!queryable(L, extra[i])) { *field = extra[i]; goto fail; }
    lua_pop(L, 1);
  }
  luaL_buffinit(L, &b);
  for (f = ep->fields; f->name; f++) {
    if (lua_getfield(L, params, f->name) == LUA_TNIL) { lua_pop(L, 1); continue; }
    add_value(L, &b, f->name, sep);
    sep = '&';
  }
  for (i = 0; i < nextra; i++) {
    lua_getfield(L, params, extra[i]);
    add_value(L, &b, extra[i], sep);
    sep = '&';
  }
  luaL_pushresult(&b);
  lua_remove(L, -2);   /* the scratch array */
  return 1;
fail:
  /* message on top of the value: keep it alone above base, dropping the scratch array */
  lua_replace(L, base + 1);
  lua_settop(L, base + 1);
  return 0;
}

/* "%2B" then 7-15 digits in an encoded path → "+1415***4444": the first and last four digits kept, fewer for
   short numbers so that at least three are always hidden (a 7-digit number would otherwise show in full) */
void sm_push_masked_path(lua_State *L, const char *path, size_t len) {
  luaL_Buffer b;
  size_t i = 0;
  luaL_buffinit(L, &b);
  while (i < len) {
    if (i + 3 < len && path[i] == '%' && path[i + 1] == '2' && (path[i + 2] == 'B' || path[i + 2] == 'b')) {
      size_t j = i + 3, n;
      while (j < len && path[j] >= '0' && path[j] <= '9') j++;
      n = j - (i + 3);
      if (n >= 7 && n <= 15) {
        size_t keep = (n - 3) / 2 < 4 ? (n - 3) / 2 : 4;
        luaL_addchar(&b, '+');
        luaL_addlstring(&b, path + i + 3, keep);
        luaL_addstring(&b, "***");
        luaL_addlstring(&b, path + j - keep, keep);
        i = j;
        continue;
      }
    }
    luaL_addchar(&b, path[i]);
    i++;
  }
  luaL_pushresult(&b);
}
