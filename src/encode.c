/* encode.c: percent-encoding of path segments and query strings (RFC 3986: all but unreserved is %XX),
   and the masked path shown to on_event. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "encode.h"
#include "validate.h"

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

/* 1 when the value at idx has a query form (a string, a boolean or a finite number); else 0 with a message
   pushed */
static int queryable(lua_State *L, int idx, const char *key) {
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: case LUA_TBOOLEAN: return 1;
    case LUA_TNUMBER: {
      double d = lua_tonumber(L, idx);
      if (lua_isinteger(L, idx) || (d == d && d != HUGE_VAL && d != -HUGE_VAL)) return 1;
      break;
    }
    default: break;
  }
  lua_pushfstring(L, "%s: expected a string, number or boolean in the query, got %s", key,
                  lua_type(L, idx) == LUA_TLIGHTUSERDATA ? "null" : luaL_typename(L, idx));
  return 0;
}

/* Adds "<sep>key=value" for the value at idx, which queryable() accepted. The value stays in its stack slot
   (below the buffer) while it is read: the buffer's growth may run the collector. */
static void add_value(lua_State *L, luaL_Buffer *b, const char *key, int idx, char sep) {
  char tmp[64];
  size_t len = 0;
  const char *s;
  if (lua_type(L, idx) == LUA_TSTRING) {
    s = lua_tolstring(L, idx, &len);
  } else if (lua_type(L, idx) == LUA_TBOOLEAN) {
    s = lua_toboolean(L, idx) ? "true" : "false";
    len = strlen(s);
  } else {
    if (lua_isinteger(L, idx)) len = (size_t)snprintf(tmp, sizeof tmp, LUA_INTEGER_FMT, lua_tointeger(L, idx));
    else {
      double d = lua_tonumber(L, idx);
      if (d == floor(d) && fabs(d) <= 9007199254740992.0) len = (size_t)snprintf(tmp, sizeof tmp, "%.0f", d);
      else len = (size_t)snprintf(tmp, sizeof tmp, "%.17g", d);
    }
    s = tmp;
  }
  luaL_addchar(b, sep);
  sm_add_escaped(b, key, strlen(key));
  luaL_addchar(b, '=');
  sm_add_escaped(b, s, len);
}

/* a query parameter: its name (a literal, or a string kept on the stack) and its value's stack slot */
typedef struct qparam { const char *key; int val; } qparam;

static int cmp_param(const void *a, const void *b) {
  return strcmp(((const qparam *)a)->key, ((const qparam *)b)->key);
}

/* the query name at idx, a string without NUL bytes (they are looked up and sorted as C strings); else NULL */
static const char *query_name(lua_State *L, int idx) {
  size_t len;
  const char *k = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
  return k && strlen(k) == len ? k : NULL;
}

/* Pushes the query string "?k=v&..." ("" when there are no params): declared params first (table order), then
   the others sorted by name. Returns 1, or 0 with a message pushed and the offending key in *field.
   Every value is read raw (no __index: validation read it so too) into a stack slot of its own, and each
   undeclared name is kept on the stack beside it, until the string is built. */
int sm_push_query(lua_State *L, const sm_endpoint *ep, int params, const char **field) {
  const sm_field *f;
  char sep = '?';
  size_t nfields = 0, nextra = 0, n = 0, ndecl, i;
  qparam *qp;
  luaL_Buffer b;
  int base;
  if (lua_isnoneornil(L, params)) { lua_pushliteral(L, ""); return 1; }
  params = lua_absindex(L, params);
  base = lua_gettop(L);
  for (f = ep->fields; f->name; f++) nfields++;
  lua_pushnil(L);
  while (lua_next(L, params)) {
    lua_pop(L, 1);
    if (!query_name(L, -1)) {
      if (lua_type(L, -1) != LUA_TSTRING) lua_pushliteral(L, "params: query parameter names must be strings");
      else lua_pushliteral(L, "params: query parameter names must not contain NUL bytes");
      lua_replace(L, base + 1);
      lua_settop(L, base + 1);
      *field = "params";
      return 0;
    }
    if (!sm_endpoint_field(ep, lua_tostring(L, -1))) nextra++;
  }
  if (nextra > 100000 || !lua_checkstack(L, (int)(nfields + 2 * nextra) + 8)) {
    lua_pushliteral(L, "params: too many query parameters");
    *field = "params";
    return 0;
  }
  /* the scratch array (a userdata below the buffer: nothing leaks if anything raises) */
  qp = (qparam *)lua_newuserdatauv(L, (nfields + nextra + 1) * sizeof *qp, 0);
  for (f = ep->fields; f->name; f++) {
    lua_pushstring(L, f->name);
    if (lua_rawget(L, params) == LUA_TNIL) { lua_pop(L, 1); continue; }
    qp[n].key = f->name;
    qp[n++].val = lua_gettop(L);
  }
  ndecl = n;
  lua_pushnil(L);
  while (lua_next(L, params)) {
    const char *k = query_name(L, -2);
    /* rechecked: a finalizer run by an allocation above may have changed the table */
    if (!k || sm_endpoint_field(ep, k) || n >= ndecl + nextra) { lua_pop(L, 1); continue; }
    lua_pushvalue(L, -2);             /* key and value stay; the copy on top goes on with lua_next */
    qp[n].key = k;
    qp[n++].val = lua_gettop(L) - 1;
  }
  qsort(qp + ndecl, n - ndecl, sizeof *qp, cmp_param);
  /* every value checked before the buffer opens: a buffer is never abandoned (in Lua 5.4 its box is a
     to-be-closed slot, which Lua 5.4.4's lua_settop mishandles when closing it moves the stack) */
  for (i = 0; i < n; i++) {
    if (!queryable(L, qp[i].val, qp[i].key)) { *field = qp[i].key; goto fail; }   /* a key of params */
  }
  luaL_buffinit(L, &b);
  for (i = 0; i < n; i++) {
    add_value(L, &b, qp[i].key, qp[i].val, sep);
    sep = '&';
  }
  luaL_pushresult(&b);
  lua_replace(L, base + 1);
  lua_settop(L, base + 1);
  return 1;
fail:
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

/* core.mask_path(path): E.164 numbers in an encoded path masked, as on_event shows them */
int l_core_mask_path(lua_State *L) {
  size_t len;
  const char *p = luaL_checklstring(L, 1, &len);
  sm_push_masked_path(L, p, len);
  return 1;
}
