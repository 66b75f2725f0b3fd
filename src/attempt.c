/* attempt.c: what the blocking loop (client.c) and the multi slots (multi.c) do around each transfer, written
   once so that both judge an attempt alike: build the request, start an attempt with the policy's timeouts,
   and complete it (classify, keep the key out of what Lua sees, on_event, retry or give up). It reads the
   client's fields and calls none of its functions. */
#include <string.h>
#include "attempt.h"
#include "client.h"
#include "clock.h"
#include "encode.h"
#include "mime.h"
#include "options.h"
#include "policy.h"

/* ---- redaction ------------------------------------------------------------------------------------------- */

static const char *find_key(const char *s, size_t n, const char *k, size_t kn) {
  const char *end = s + n;
  while ((size_t)(end - s) >= kn) {
    const char *p = (const char *)memchr(s, k[0], (size_t)(end - s) - kn + 1);
    if (!p) return NULL;
    if (memcmp(p, k, kn) == 0) return p;
    s = p + 1;
  }
  return NULL;
}

/* Replaces the string at idx by a copy without the key when it holds it; the key stays in C. */
static void redact_value(lua_State *L, const sm_client *c, int idx) {
  size_t n;
  const char *s = lua_tolstring(L, idx, &n), *hit = find_key(s, n, c->key, c->key_len);
  luaL_Buffer b;
  if (!hit) return;
  idx = lua_absindex(L, idx);
  luaL_buffinit(L, &b);
  do {
    luaL_addlstring(&b, s, (size_t)(hit - s));
    luaL_addstring(&b, "[REDACTED]");
    n -= (size_t)(hit - s) + c->key_len;
    s = hit + c->key_len;
  } while ((hit = find_key(s, n, c->key, c->key_len)) != NULL);
  luaL_addlstring(&b, s, n);
  luaL_pushresult(&b);
  lua_replace(L, idx);
}

/* replaces the client's key by [REDACTED] in each string field of the table at idx */
static void redact(lua_State *L, const sm_client *c, int idx) {
  if (!c->key || lua_type(L, idx) != LUA_TTABLE) return;
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {             /* assigning to a field being traversed is allowed */
    if (lua_type(L, -1) == LUA_TSTRING) {
      redact_value(L, c, -1);
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, idx);
    } else {
      lua_pop(L, 1);
    }
  }
}

/* ---- on_event -------------------------------------------------------------------------------------------- */

typedef struct sm_event {
  const char *type;            /* "request", "response", "retry", "give_up" */
  long status;                 /* 0: none */
  double elapsed;
  double delay;                /* < 0: none */
  const char *kind;            /* the error's kind, or NULL */
  const char *request_id;      /* the response's X-Request-Id, or NULL */
} sm_event;

/* on_event, between attempts only, under lua_pcall: its errors are swallowed; no key, no bodies */
static void emit(lua_State *L, int self, const sm_attempt *a, const sm_event *ev) {
  const sm_client *c = (const sm_client *)lua_touserdata(L, self);
  if (lua_getiuservalue(L, self, SM_UV_ON_EVENT) != LUA_TFUNCTION) { lua_pop(L, 1); return; }
  lua_createtable(L, 0, 9);
  lua_pushstring(L, ev->type); lua_setfield(L, -2, "type");
  lua_pushstring(L, a->r.ep->method); lua_setfield(L, -2, "method");
  sm_push_masked_path(L, a->r.path, a->r.path_len);
  if (c->key) redact_value(L, c, -1);
  lua_setfield(L, -2, "path");
  lua_pushinteger(L, a->n); lua_setfield(L, -2, "attempt");
  if (ev->status > 0) { lua_pushinteger(L, ev->status); lua_setfield(L, -2, "status"); }
  lua_pushnumber(L, ev->elapsed); lua_setfield(L, -2, "elapsed");
  if (ev->delay >= 0) { lua_pushnumber(L, ev->delay); lua_setfield(L, -2, "delay"); }
  if (ev->kind) { lua_pushstring(L, ev->kind); lua_setfield(L, -2, "kind"); }
  if (ev->request_id && *ev->request_id) {
    lua_pushstring(L, ev->request_id);
    if (c->key) redact_value(L, c, -1);
    lua_setfield(L, -2, "request_id");
  }
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1);
}

static const char *err_kind(lua_State *L, int err) {
  const char *k;
  lua_getfield(L, err, "kind");
  k = lua_tostring(L, -1);
  lua_pop(L, 1);                     /* anchored in the error */
  return k;
}

/* ---- a success's metadata ------------------------------------------------------------------------------- */

#define SM_RESPONSE_MT "sigmamind.response"

/* headers: { lower-case name = value } (a repeated name's values joined by ", "), parsed from raw_headers on
   first use and kept in the metadata; building it for every request would cost each request, not the few
   that look (a table and a string for every header) */
static int push_parsed_headers(lua_State *L, int meta) {
  size_t len;
  const char *p, *end;
  int t;
  lua_getfield(L, meta, "raw_headers");
  p = lua_tolstring(L, -1, &len);
  if (!p) { p = ""; len = 0; }
  end = p + len;
  lua_newtable(L);
  t = lua_gettop(L);
  while (p < end) {
    const char *eol = (const char *)memchr(p, '\n', (size_t)(end - p)), *colon, *v, *ve;
    luaL_Buffer b;
    if (!eol) eol = end;
    colon = (const char *)memchr(p, ':', (size_t)(eol - p));
    if (colon && colon > p && *p != ' ' && *p != '\t') {                 /* not a folded line */
      luaL_buffinit(L, &b);
      for (v = p; v < colon; v++) luaL_addchar(&b, (*v >= 'A' && *v <= 'Z') ? (char)(*v + ('a' - 'A')) : *v);
      luaL_pushresult(&b);
      for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++) {}
      for (ve = eol; ve > v && (unsigned char)ve[-1] <= ' '; ve--) {}    /* CR, spaces */
      lua_pushvalue(L, -1);
      if (lua_rawget(L, t) == LUA_TSTRING) {                             /* the name again */
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, (size_t)(ve - v));
        lua_concat(L, 3);
      } else {
        lua_pop(L, 1);
        lua_pushlstring(L, v, (size_t)(ve - v));
      }
      lua_rawset(L, t);
    }
    p = eol + 1;
  }
  lua_remove(L, -2);
  lua_pushliteral(L, "headers");
  lua_pushvalue(L, -2);
  lua_rawset(L, meta);
  return 1;
}

/* __index of the metadata: only headers is computed */
static int l_response_index(lua_State *L) {
  if (lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "headers") == 0 && lua_type(L, 1) == LUA_TTABLE)
    return push_parsed_headers(L, 1);
  return 0;
}

static int l_response_next(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  if (lua_next(L, 1)) return 2;
  lua_pushnil(L);
  return 1;
}

/* __pairs: headers is there for pairs too */
static int l_response_pairs(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushliteral(L, "headers");
  if (lua_rawget(L, 1) == LUA_TNIL) push_parsed_headers(L, 1);
  lua_pushcfunction(L, l_response_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

/* pushes { status, raw_headers, request_id, attempts, elapsed, method, path } (and headers, on first use) for a
   request that succeeded; the key, should the server echo it, redacted */
static void push_meta(lua_State *L, const sm_client *c, const sm_attempt *a, const sm_xfer *x, long status,
                      double elapsed) {
  lua_createtable(L, 0, 8);
  lua_pushinteger(L, status); lua_setfield(L, -2, "status");
  lua_pushlstring(L, x->headers.len ? x->headers.data : "", x->headers.len);
  if (c->key && x->headers.len && find_key(x->headers.data, x->headers.len, c->key, c->key_len))
    redact_value(L, c, -1);
  lua_setfield(L, -2, "raw_headers");
  if (x->request_id[0]) {
    lua_pushstring(L, x->request_id);
    if (c->key) redact_value(L, c, -1);
    lua_setfield(L, -2, "request_id");
  }
  lua_pushinteger(L, a->n); lua_setfield(L, -2, "attempts");
  lua_pushnumber(L, elapsed); lua_setfield(L, -2, "elapsed");
  lua_pushstring(L, a->r.ep->method); lua_setfield(L, -2, "method");
  lua_pushlstring(L, a->r.path, a->r.path_len); lua_setfield(L, -2, "path");
  if (luaL_newmetatable(L, SM_RESPONSE_MT)) {
    lua_pushcfunction(L, l_response_index); lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_response_pairs); lua_setfield(L, -2, "__pairs");
  }
  lua_setmetatable(L, -2);
}

/* ---- the steps ------------------------------------------------------------------------------------------- */

int sm_attempt_open(lua_State *L, int self, sm_attempt *a) {
  const sm_client *c = (const sm_client *)lua_touserdata(L, self);
  sm_reqopts o;
  memset(a, 0, sizeof *a);
  a->r.ep = sm_endpoint_find(lua_tostring(L, self + 1));
  sm_reqopts_check(L, self + 4, a->r.ep, &o);  /* checked by the caller already: it cannot raise here */
  a->policy = c->policy;
  if (o.set & SM_OPT_TIMEOUT) a->policy.timeout = o.timeout;
  if (o.set & SM_OPT_CONNECT_TIMEOUT) a->policy.connect_timeout = o.connect_timeout;
  if (o.set & SM_OPT_DEADLINE) a->policy.deadline = o.deadline;
  if (o.set & SM_OPT_MAX_RETRIES) a->policy.max_retries = o.max_retries;
  if (o.set & (SM_OPT_EXTRA_BODY | SM_OPT_EXTRA_QUERY)) {
    a->r.extra_body = sm_reqopts_push(L, &o, "extra_body");
    a->r.extra_query = sm_reqopts_push(L, &o, "extra_query");
  }
  if (!sm_request_build(L, &a->r, self + 2, self + 3, c->base_url, c->base_len)) {
    redact(L, c, -1);
    luaL_pushfail(L);
    lua_insert(L, -2);
    return 0;
  }
  if (c->campaign_form && sm_mime_applies(a->r.ep)) sm_mime_encode(L, &a->r, -2);   /* the body */
  sm_reqopts_push_headers(L, &o);
  if (lua_type(L, -1) == LUA_TSTRING) a->headers = lua_tolstring(L, -1, &a->headers_len);
  a->start = sm_now();
  return 1;
}

/* a transfer's own header list goes once its attempt is over; the handle is pointed back at the client's */
static void drop_headers(const sm_client *c, sm_xfer *x) {
  if (!x->own_headers) return;
  curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, c->headers);
  sm_headers_free(x->own_headers);
  x->own_headers = NULL;
}

CURLcode sm_attempt_begin(lua_State *L, int self, sm_attempt *a, sm_xfer *x) {
  const sm_client *c = (const sm_client *)lua_touserdata(L, self);
  sm_event ev = { "request", 0, 0, -1, NULL, NULL };
  double timeout, connect_timeout;
  CURLcode rc;
  a->n++;
  ev.elapsed = sm_now() - a->start;
  emit(L, self, a, &ev);
  timeout = sm_attempt_timeout(&a->policy, sm_now() - a->start, &connect_timeout, &a->capped);
  drop_headers(c, x);                /* one an error left behind */
  rc = sm_xfer_setup(x, &a->r, timeout, connect_timeout);
  if (rc == CURLE_OK && a->headers) {
    if (!(x->own_headers = sm_headers_merge(c->headers, a->headers, a->headers_len))) return CURLE_OUT_OF_MEMORY;
    if (x->form) x->form_ct.next = x->own_headers;     /* a form's Content-Type stays first */
    rc = curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->form ? &x->form_ct : x->own_headers);
  }
  return rc;
}

int sm_attempt_finish(lua_State *L, int self, sm_attempt *a, sm_xfer *x, CURLcode rc, double *delay) {
  sm_client *c = (sm_client *)lua_touserdata(L, self);
  sm_event ev = { "response", 0, 0, -1, NULL, NULL };
  long nconn = 0;
  double retry_after;
  int outcome, err;
  drop_headers(c, x);
  outcome = sm_xfer_classify(L, x, &a->r, rc, a->capped, &retry_after);
  err = lua_gettop(L);
  *delay = -1;
  if (rc == CURLE_OK) curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &ev.status);
  curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &nconn);
  ev.elapsed = sm_now() - a->start;
  ev.request_id = x->request_id;
  if (outcome != SM_OK) {
    redact(L, c, err);
    ev.kind = err_kind(L, err);
  }
  emit(L, self, a, &ev);
  if (outcome == SM_OK) push_meta(L, c, a, x, ev.status, ev.elapsed);
  if (outcome != SM_OK) {
    lua_pushinteger(L, a->n); lua_setfield(L, err, "attempts");
    lua_pushnumber(L, ev.elapsed); lua_setfield(L, err, "elapsed");
    if (outcome == SM_RETRY)
      *delay = sm_next_delay(&a->policy, a->n, retry_after, sm_jitter(&c->rng), ev.elapsed);
    if (*delay >= 0) {
      ev.type = "retry";
      ev.delay = *delay;
    } else {
      ev.type = "give_up";
      outcome = SM_FAIL;
    }
    emit(L, self, a, &ev);
  }
  /* the outcome is complete: only now does the client's state change */
  c->connects += nconn;
  if (x->date_seen && !x->date_void) { c->clock_offset = x->date_offset; c->clock_known = 1; }
  else if (x->header_status > 0) c->clock_known = 0;
  return outcome;
}
