/* mime.c: campaigns.create as multipart/form-data, the encoding of SigmaMind's API reference page (the guide's
   is JSON). The form is made from the JSON body as encoded and validated, so both encodings carry the same
   campaign. Its parts travel as one Lua string, pinned as a JSON body is; libcurl's form is built from that
   string with C memory only, by the transfer that owns it (transfer.c). */
#include <stdio.h>
#include <string.h>
#include "mime.h"
#include "crypto.h"
#include "json.h"

/* the form fields SigmaMind's reference names, in its order; `file` and `dynamicVariables` are parts of
   their own, and fields it does not name follow these as text */
static const char *const text_fields[] = {
  "campaignName", "agentId", "sipPhoneNumber", "concurrentCalls", "isScheduled", "scheduledDate",
  "scheduledTime", "scheduledTimezone", NULL
};

int sm_mime_applies(const sm_endpoint *ep) {
  return ep && strcmp(ep->name, "campaigns.create") == 0;
}

static int is_text_field(const char *k) {
  int i;
  for (i = 0; text_fields[i]; i++)
    if (strcmp(text_fields[i], k) == 0) return 1;
  return 0;
}

/* Appends one part to the array at parts as four strings (name, content type, filename, data; "" for none)
   for the value at v: a string as it is, an integer in decimal, any other number, a boolean or a table as
   JSON text (a table typed application/json). JSON null and nil make no part. */
static void add_part(lua_State *L, int parts, const char *name, int v, const char *type, const char *filename) {
  int t = lua_type(L, v), json = 0;
  lua_Integer n = (lua_Integer)lua_rawlen(L, parts);
  if (t == LUA_TNIL || t == LUA_TLIGHTUSERDATA) return;
  v = lua_absindex(L, v);
  if (t == LUA_TTABLE && !type) type = "application/json";
  lua_pushstring(L, name); lua_rawseti(L, parts, n + 1);
  lua_pushstring(L, type ? type : ""); lua_rawseti(L, parts, n + 2);
  lua_pushstring(L, filename ? filename : ""); lua_rawseti(L, parts, n + 3);
  if (t == LUA_TSTRING) lua_pushvalue(L, v);
  else if (t == LUA_TBOOLEAN) lua_pushstring(L, lua_toboolean(L, v) ? "true" : "false");
  else if (t == LUA_TNUMBER && lua_isinteger(L, v)) lua_pushfstring(L, "%I", (LUA_INTEGER)lua_tointeger(L, v));
  else json = 1;
  if (json && !sm_json_encode(L, v)) lua_pop(L, 1);   /* nil, msg: cannot be, the body was JSON; nil stays */
  if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_pushliteral(L, ""); }
  lua_rawseti(L, parts, n + 4);
}

void sm_mime_encode(lua_State *L, sm_req *r, int idx) {
  size_t len;
  const char *json;
  int obj, parts, i, n;
  luaL_Buffer b;
  idx = lua_absindex(L, idx);
  json = lua_tolstring(L, idx, &len);
  if (!sm_json_decode(L, json, len) || lua_type(L, -1) != LUA_TTABLE)
    luaL_error(L, "sigmamind: cannot make a form of the body: %s", lua_tostring(L, -1));
  obj = lua_gettop(L);
  lua_newtable(L);
  parts = obj + 1;
  for (i = 0; text_fields[i]; i++) {
    lua_getfield(L, obj, text_fields[i]);
    add_part(L, parts, text_fields[i], -1, NULL, NULL);
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, obj)) {               /* fields the reference does not name (extra_body): as text */
    const char *k = lua_tostring(L, -2);   /* a decoded object's keys are strings */
    if (!is_text_field(k) && strcmp(k, "file") != 0 && strcmp(k, "dynamicVariables") != 0)
      add_part(L, parts, k, -1, NULL, NULL);
    lua_pop(L, 1);
  }
  /* the CSV itself: `file` is canonical base64 (validation checked it); one that will not decode (given
     past validation) goes as it is, for the server to refuse */
  lua_getfield(L, obj, "file");
  if (lua_type(L, -1) == LUA_TSTRING) {
    lua_pushcfunction(L, l_core_base64_decode);
    lua_pushvalue(L, -2);
    lua_call(L, 1, 1);
    if (lua_isnil(L, -1)) lua_pop(L, 1);
    else lua_remove(L, -2);
  }
  add_part(L, parts, "file", -1, "text/csv", "contacts.csv");
  lua_pop(L, 1);
  lua_getfield(L, obj, "dynamicVariables");
  add_part(L, parts, "variables", -1, "application/json", NULL);
  lua_pop(L, 1);

  /* each string as "<length>:<bytes>\0": the NUL ends names for libcurl; the length carries the data */
  n = (int)lua_rawlen(L, parts);
  luaL_buffinit(L, &b);
  for (i = 1; i <= n; i++) {
    char head[32];
    size_t l;
    const char *s;
    lua_rawgeti(L, parts, i);
    s = lua_tolstring(L, -1, &l);
    lua_pop(L, 1);                         /* still held by parts */
    snprintf(head, sizeof head, "%lu:", (unsigned long)l);
    luaL_addstring(&b, head);
    luaL_addlstring(&b, s, l);
    luaL_addchar(&b, '\0');
  }
  luaL_pushresult(&b);
  lua_replace(L, idx);
  lua_settop(L, obj - 1);
  r->body = lua_tolstring(L, idx, &r->body_len);
  r->form = 1;
}

/* ---- the libcurl form, C only ------------------------------------------------------------------------- */

/* the next "<length>:<bytes>\0" of [*p, end): its bytes (NUL-terminated) and length; NULL when malformed */
static const char *next_string(const char **p, const char *end, size_t *len) {
  const char *s = *p;
  size_t n = 0;
  while (s < end && *s >= '0' && *s <= '9') {
    if (n > (size_t)(end - s)) return NULL;
    n = n * 10 + (size_t)(*s++ - '0');
  }
  if (s == *p || s >= end || *s != ':' || n >= (size_t)(end - s - 1) || s[1 + n] != '\0') return NULL;
  *len = n;
  *p = s + 2 + n;
  return s + 1;
}

curl_mime *sm_mime_build(CURL *easy, const char *p, size_t len) {
  const char *end = p ? p + len : p;           /* no body: an empty form (p + 0 on NULL is undefined) */
  curl_mime *m = curl_mime_init(easy);
  if (!m) return NULL;
  while (p < end) {
    const char *name, *type, *filename, *data;
    size_t nlen, tlen, flen, dlen;
    curl_mimepart *part;
    if (!(name = next_string(&p, end, &nlen)) || !(type = next_string(&p, end, &tlen)) ||
        !(filename = next_string(&p, end, &flen)) || !(data = next_string(&p, end, &dlen)) ||
        !(part = curl_mime_addpart(m)) || curl_mime_name(part, name) != CURLE_OK ||
        (tlen > 0 && curl_mime_type(part, type) != CURLE_OK) ||
        (flen > 0 && curl_mime_filename(part, filename) != CURLE_OK) ||
        curl_mime_data(part, data, dlen) != CURLE_OK) {   /* libcurl copies each */
      curl_mime_free(m);
      return NULL;
    }
  }
  return m;
}
