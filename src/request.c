/* request.c: one endpoint call built from (name, args, params): misuse raised, then validation, the path with
   its argument escaped, the query or the JSON body, and the URL. Nothing is sent here. core.prepare and
   core.validate are this file seen from Lua. */
#include <string.h>
#include "request.h"
#include "encode.h"
#include "error.h"
#include "json.h"
#include "options.h"
#include "validate.h"

/* appends the query string of extra_query (its names sorted, as given) to the one on top */
static int push_extra_query(lua_State *L, const sm_endpoint *ep, int extra, int path) {
  static const sm_field none[] = { { NULL, 0, 0, 0, 0, NULL, NULL } };
  sm_endpoint any = *ep;
  const char *field = NULL;
  any.fields = none;                 /* every name an undeclared one */
  if (!sm_push_query(L, &any, extra, &field)) {
    if (field && strcmp(field, "params") == 0) field = "extra_query";
    sm_push_invalid(L, ep->method, lua_tostring(L, path), field);
    return 0;
  }
  if (lua_rawlen(L, -1) > 0 && lua_rawlen(L, -2) > 0) {   /* "?a=1" and "?b=2": "?a=1&b=2" */
    lua_pushfstring(L, "%s&%s", lua_tostring(L, -2), lua_tostring(L, -1) + 1);
    lua_replace(L, -3);
    lua_pop(L, 1);
  } else if (lua_rawlen(L, -1) > 0) {
    lua_replace(L, -2);
  } else {
    lua_pop(L, 1);
  }
  return 1;
}

/* Builds the path from the template and the args table (or leaves the template when args is nil). Pushes the
   path; returns 0 with an invalid error pushed instead. */
static int push_path(lua_State *L, const sm_endpoint *ep, int args) {
  const char *t = ep->path, *open;
  size_t alen = 0;
  const char *a = NULL;
  luaL_Buffer b;
  if (!ep->arg || lua_isnoneornil(L, args)) { lua_pushstring(L, ep->path); return 1; }
  lua_rawgeti(L, args, 1);
  a = lua_tolstring(L, -1, &alen);   /* a string: checked by the caller */
  lua_pop(L, 1);                     /* anchored in args */
  if (!sm_validate_arg(L, ep, a, alen)) {
    sm_push_invalid(L, ep->method, ep->path, ep->arg);
    return 0;
  }
  open = strchr(t, '{');
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, t, (size_t)(open - t));
  sm_add_escaped(&b, a, alen);
  luaL_addstring(&b, strchr(open, '}') + 1);
  luaL_pushresult(&b);
  return 1;
}

/* The body's table: params itself, or, when a field is spelt by its alias or extra_body is given, a copy with
   the endpoint's spellings and extra_body's fields over them. Pushes it (or nil for no params). */
static void push_sent(lua_State *L, const sm_endpoint *ep, int params, int extra) {
  const sm_field *f;
  int renamed = 0;
  if (!lua_isnoneornil(L, params))
    for (f = ep->fields; f->name && !renamed; f++) {
      if (!f->alias) continue;
      lua_pushstring(L, f->alias);
      renamed = lua_rawget(L, params) != LUA_TNIL;
      lua_pop(L, 1);
    }
  if (!renamed && !extra) { lua_pushvalue(L, params); return; }
  lua_newtable(L);
  if (!lua_isnoneornil(L, params)) {
    lua_pushnil(L);
    while (lua_next(L, params)) {
      int alias = 0;
      const sm_field *g = lua_type(L, -2) == LUA_TSTRING ? sm_endpoint_spelling(ep, lua_tostring(L, -2), &alias)
                                                         : NULL;
      if (alias) lua_pushstring(L, g->name); else lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
  }
  if (extra) {
    lua_pushnil(L);
    while (lua_next(L, extra)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
  }
}

/* checks an extra table's strings; 0 with an invalid error pushed (path at the path's slot) */
static int check_extra(lua_State *L, const sm_endpoint *ep, int t, const char *root, int path) {
  const char *field = NULL;
  if (sm_validate_extra(L, ep, t, root, ep->body && t && strcmp(root, "extra_body") == 0, &field)) return 1;
  sm_push_invalid(L, ep->method, lua_tostring(L, path), field);
  return 0;
}

int sm_request_build(lua_State *L, sm_req *r, int args, int params, const char *base, size_t blen) {
  const sm_endpoint *ep = r->ep;
  const char *field = NULL;
  int path;
  if (!push_path(L, ep, args)) return 0;
  path = lua_gettop(L);
  if (!sm_validate_params(L, ep, params, &field)) {
    sm_push_invalid(L, ep->method, lua_tostring(L, path), field);
    return 0;
  }
  if (r->extra_body && !check_extra(L, ep, r->extra_body, "extra_body", path)) return 0;
  if (r->extra_query && !check_extra(L, ep, r->extra_query, "extra_query", path)) return 0;
  if (ep->body) {
    push_sent(L, ep, params, r->extra_body);   /* from here on params is what is sent */
    params = lua_gettop(L);
    if (lua_isnoneornil(L, params)) lua_pushliteral(L, "{}");
    else if (!sm_json_encode(L, params)) {
      /* name the field at fault: each top-level value encoded alone (only on this path, so its cost is no one's);
         a name that is no string came from extra_body: params has only the endpoint's names */
      const char *bad = r->extra_body ? "extra_body" : "params";
      int top = lua_gettop(L);
      lua_pushnil(L);
      while (lua_next(L, params)) {
        if (lua_type(L, -2) == LUA_TSTRING && !sm_json_encode(L, lua_gettop(L))) {
          lua_pushvalue(L, -4);                 /* the key */
          lua_replace(L, top - 1);              /* over nil, the whole body's nil */
          bad = lua_tostring(L, top - 1);
          lua_pop(L, 4);                        /* nil, msg, value, key */
          break;
        }
        lua_settop(L, top + 1);                 /* drop the value (and what encode pushed), keep the key */
      }
      lua_settop(L, top);
      lua_pushfstring(L, "%s: cannot be encoded as JSON: %s", bad, lua_tostring(L, -1));
      sm_push_invalid(L, ep->method, lua_tostring(L, path), bad);
      return 0;
    }
    lua_remove(L, params);           /* the body at path + 1 */
    lua_pushliteral(L, "");          /* the query */
  } else {
    lua_pushnil(L);
    if (!sm_push_query(L, ep, params, &field)) {
      sm_push_invalid(L, ep->method, lua_tostring(L, path), field);
      return 0;
    }
  }
  if (r->extra_query && !push_extra_query(L, ep, r->extra_query, path)) return 0;
  if (!base) lua_pop(L, 1);
  if (base) {                        /* url = base .. path .. query, in the query's slot */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, base, blen);
    lua_pushvalue(L, path);
    luaL_addvalue(&b);
    lua_pushvalue(L, path + 2);
    luaL_addvalue(&b);
    luaL_pushresult(&b);
    lua_replace(L, path + 2);
    r->url = lua_tostring(L, path + 2);
  }
  r->path = lua_tolstring(L, path, &r->path_len);
  r->body = ep->body ? lua_tolstring(L, path + 1, &r->body_len) : NULL;
  if (!ep->body) r->body_len = 0;
  return 1;
}

const sm_endpoint *sm_request_check(lua_State *L) {
  const char *name = luaL_checkstring(L, 2);
  const sm_endpoint *ep = sm_endpoint_find(name);
  if (!ep) luaL_argerror(L, 2, lua_pushfstring(L, "unknown endpoint '%s'", name));
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
  if (ep->arg) {
    if (lua_type(L, 3) != LUA_TTABLE || lua_rawlen(L, 3) != 1)
      luaL_argerror(L, 3, lua_pushfstring(L, "%s takes one path argument (%s)", name, ep->arg));
    if (lua_rawgeti(L, 3, 1) != LUA_TSTRING)
      luaL_argerror(L, 3, lua_pushfstring(L, "%s: expected a string, got %s", ep->arg,
                                                luaL_typename(L, -1)));
    lua_pop(L, 1);
  } else if (lua_type(L, 3) == LUA_TTABLE && lua_rawlen(L, 3) != 0) {
    luaL_argerror(L, 3, lua_pushfstring(L, "%s takes no path arguments", name));
  }
  return ep;
}

/* core.prepare(name, args, params [, opts]) --> method, path_and_query, body|nil, path | nil, err
   Validation, path escaping, query and JSON body exactly as client:request does them; nothing is sent. opts is
   checked as client:request checks it; its extra_body and extra_query are applied, the rest (headers, timeouts)
   is the caller's to apply. */
int l_core_prepare(lua_State *L) {
  sm_req r;
  sm_reqopts o;
  memset(&r, 0, sizeof r);
  lua_settop(L, 4);
  if (lua_type(L, 1) == LUA_TSTRING && (r.ep = sm_endpoint_find(lua_tostring(L, 1))) != NULL)
    sm_reqopts_check(L, 4, r.ep, &o);            /* misuse blamed on the caller's argument 4 */
  lua_pushnil(L);                    /* client:request's argument positions: (self, name, args, params, opts) */
  lua_insert(L, 1);
  r.ep = sm_request_check(L);
  sm_reqopts_check(L, 5, r.ep, &o);
  r.extra_body = sm_reqopts_push(L, &o, "extra_body");        /* 6 */
  r.extra_query = sm_reqopts_push(L, &o, "extra_query");      /* 7 */
  if (!sm_request_build(L, &r, 3, 4, "", 0)) { luaL_pushfail(L); lua_insert(L, -2); return 2; }
  lua_pushstring(L, r.ep->method);
  lua_pushstring(L, r.url);
  if (r.body) lua_pushlstring(L, r.body, r.body_len); else lua_pushnil(L);
  lua_pushlstring(L, r.path, r.path_len);
  return 4;
}

/* core.validate(name, params [, args [, opts]]) --> true | nil, err; opts as core.prepare takes them */
int l_core_validate(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  sm_reqopts o;
  sm_req r;
  memset(&r, 0, sizeof r);
  r.ep = sm_endpoint_find(name);
  if (!r.ep) return luaL_argerror(L, 1, lua_pushfstring(L, "unknown endpoint '%s'", name));
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 4);                  /* opts, if given, at 4 */
  if (!lua_isnil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    if (r.ep->arg && lua_rawgeti(L, 3, 1) != LUA_TSTRING)
      return luaL_argerror(L, 3, lua_pushfstring(L, "%s: expected a string", r.ep->arg ? r.ep->arg : "args"));
    lua_settop(L, 4);
  }
  sm_reqopts_check(L, 4, r.ep, &o);
  r.extra_body = sm_reqopts_push(L, &o, "extra_body");
  r.extra_query = sm_reqopts_push(L, &o, "extra_query");
  if (!sm_request_build(L, &r, 3, 2, NULL, 0)) { luaL_pushfail(L); lua_insert(L, -2); return 2; }
  lua_pushboolean(L, 1);
  return 1;
}
