/* options.c: a request's own options, checked before anything is built (misuse raises, naming the option),
   the policy they make for this request, and its extra headers: checked, joined into one string that the
   request pins, and merged over the client's base headers into the list libcurl sends. */
#include <math.h>
#include <string.h>
#include <strings.h>
#include "options.h"

/* what a request may not set: the credential is the client's (set once, kept in C), the framing and the
   host are libcurl's (a wrong one would corrupt the request or send it somewhere else) */
static const char *const refused[] = { "X-API-Key", "Host", "Content-Length", "Transfer-Encoding", NULL };

/* RFC 9110 token characters */
static int tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static double opt_seconds(lua_State *L, int idx, const char *name, int v) {
  double d;
  if (lua_type(L, v) != LUA_TNUMBER)
    luaL_argerror(L, idx, lua_pushfstring(L, "%s: expected a number, got %s", name, luaL_typename(L, v)));
  d = lua_tonumber(L, v);
  if (!(d >= 0.001) || d == HUGE_VAL)
    luaL_argerror(L, idx, lua_pushfstring(L, "%s: expected a finite number of seconds >= 0.001", name));
  return d;
}

static void check_table(lua_State *L, int idx, const char *name, int v) {
  if (lua_type(L, v) != LUA_TTABLE)
    luaL_argerror(L, idx, lua_pushfstring(L, "%s: expected a table, got %s", name, luaL_typename(L, v)));
}

/* each header: a token name that the client does not own, and a string value without CR, LF or NUL (or false) */
static void check_headers(lua_State *L, int idx, int h) {
  lua_pushnil(L);
  while (lua_next(L, h)) {
    size_t nlen, vlen = 0, i;
    const char *name, *value = NULL;
    int j;
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_argerror(L, idx, lua_pushfstring(L, "headers: expected names as strings, got a %s",
                                            luaL_typename(L, -2)));
    name = lua_tolstring(L, -2, &nlen);
    for (i = 0; i < nlen; i++) if (!tchar((unsigned char)name[i])) break;
    if (nlen == 0 || i < nlen)
      luaL_argerror(L, idx, "headers: a name must be a non-empty HTTP token "
                            "(letters, digits and !#$%&'*+-.^_`|~)");
    for (j = 0; refused[j]; j++)
      if (strlen(refused[j]) == nlen && strncasecmp(refused[j], name, nlen) == 0)
        luaL_argerror(L, idx, lua_pushfstring(L, "headers: %s is set by the client and cannot be given",
                                              refused[j]));
    if (lua_type(L, -1) == LUA_TSTRING) value = lua_tolstring(L, -1, &vlen);
    else if (!(lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)))
      luaL_argerror(L, idx, lua_pushfstring(L, "headers: %s: expected a string (or false: not sent), got %s", name,
                                            luaL_typename(L, -1)));
    if (value && (memchr(value, '\r', vlen) || memchr(value, '\n', vlen) || memchr(value, '\0', vlen)))
      luaL_argerror(L, idx, lua_pushfstring(L, "headers: %s: a value must not contain CR, LF or NUL", name));
    lua_pop(L, 1);
  }
}

void sm_reqopts_check(lua_State *L, int idx, const sm_endpoint *ep, sm_reqopts *o) {
  memset(o, 0, sizeof *o);
  if (lua_isnoneornil(L, idx)) return;
  idx = lua_absindex(L, idx);
  check_table(L, idx, "options", idx);
  o->table = idx;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    int v = lua_gettop(L);
    if (!k) {
      luaL_argerror(L, idx, lua_pushfstring(L, "options: expected names as strings, got a %s",
                                            luaL_typename(L, -2)));
    } else if (strcmp(k, "timeout") == 0) {
      o->timeout = opt_seconds(L, idx, k, v); o->set |= SM_OPT_TIMEOUT;
    } else if (strcmp(k, "connect_timeout") == 0) {
      o->connect_timeout = opt_seconds(L, idx, k, v); o->set |= SM_OPT_CONNECT_TIMEOUT;
    } else if (strcmp(k, "deadline") == 0) {
      o->deadline = opt_seconds(L, idx, k, v); o->set |= SM_OPT_DEADLINE;
    } else if (strcmp(k, "max_retries") == 0) {
      double d = lua_type(L, v) == LUA_TNUMBER ? lua_tonumber(L, v) : -1;
      if (!(d >= 0) || d != floor(d)) {
        const char *given = lua_type(L, v) == LUA_TNUMBER ? lua_tostring(L, v) : luaL_typename(L, v);
        luaL_argerror(L, idx, lua_pushfstring(L, "max_retries: expected a whole number >= 0, got %s", given));
      }
      o->max_retries = d > 1000 ? 1000 : (long)d;   /* capped before the cast, as core.new does */
      o->set |= SM_OPT_MAX_RETRIES;
    } else if (strcmp(k, "headers") == 0) {
      check_table(L, idx, k, v);
      check_headers(L, idx, v);
      lua_pushnil(L);
      if (lua_next(L, v)) { lua_pop(L, 2); o->set |= SM_OPT_HEADERS; }
    } else if (strcmp(k, "extra_body") == 0) {
      check_table(L, idx, k, v);
      if (!ep->body)
        luaL_argerror(L, idx, lua_pushfstring(L, "extra_body: %s %s has no body (extra_query adds to its query)",
                                              ep->method, ep->path));
      o->set |= SM_OPT_EXTRA_BODY;
    } else if (strcmp(k, "extra_query") == 0) {
      check_table(L, idx, k, v);
      o->set |= SM_OPT_EXTRA_QUERY;
    } else {
      luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s' (expected timeout, connect_timeout, deadline, "
                                            "max_retries, headers, extra_body or extra_query)", k));
    }
    lua_pop(L, 1);
  }
}

int sm_reqopts_push(lua_State *L, const sm_reqopts *o, const char *name) {
  unsigned bit = strcmp(name, "extra_body") == 0 ? SM_OPT_EXTRA_BODY : SM_OPT_EXTRA_QUERY;
  if (!(o->set & bit)) { lua_pushnil(L); return 0; }
  lua_pushstring(L, name);
  lua_rawget(L, o->table);           /* read raw, as checked */
  return lua_gettop(L);
}

void sm_reqopts_push_headers(lua_State *L, const sm_reqopts *o) {
  luaL_Buffer b;
  int h;
  if (!(o->set & SM_OPT_HEADERS)) { lua_pushnil(L); return; }
  lua_pushliteral(L, "headers");
  lua_rawget(L, o->table);
  h = lua_gettop(L);
  luaL_buffinit(L, &b);
  lua_pushnil(L);
  while (lua_next(L, h)) {
    lua_pushvalue(L, -2);
    luaL_addvalue(&b);               /* a string: checked */
    if (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) == 0) {
      luaL_addchar(&b, ';');          /* libcurl's form of a header sent empty: "Name:" would send none */
      lua_pop(L, 1);
    } else if (lua_type(L, -1) == LUA_TSTRING) {
      luaL_addstring(&b, ": ");
      luaL_addvalue(&b);
    } else {
      luaL_addchar(&b, ':');
      lua_pop(L, 1);
    }
    luaL_addchar(&b, '\0');
  }
  luaL_pushresult(&b);
  lua_remove(L, h);
}

/* the length of a header line's name: up to ':' (or ';', libcurl's form of an empty header) */
static size_t name_len(const char *line) {
  size_t n = 0;
  while (line[n] && line[n] != ':' && line[n] != ';') n++;
  return n;
}

struct curl_slist *sm_headers_merge(const struct curl_slist *base, const char *lines, size_t len) {
  struct curl_slist *list = NULL, *grown;
  const char *end = lines + len, *p;
  for (; base; base = base->next) {
    size_t n = name_len(base->data);
    int replaced = 0;
    for (p = lines; p < end && !replaced; p += strlen(p) + 1)
      replaced = name_len(p) == n && strncasecmp(p, base->data, n) == 0;
    if (replaced) continue;
    if (!(grown = curl_slist_append(list, base->data))) goto oom;
    list = grown;
  }
  for (p = lines; p < end; p += strlen(p) + 1) {
    if (!(grown = curl_slist_append(list, p))) goto oom;
    list = grown;
  }
  return list;
oom:
  sm_headers_free(list);
  return NULL;
}

void sm_headers_free(struct curl_slist *list) {
  struct curl_slist *h;
  for (h = list; h; h = h->next) {
    volatile char *v = h->data;
    while (v && *v) *v++ = 0;
  }
  curl_slist_free_all(list);
}
