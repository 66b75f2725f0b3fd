/* client.c: the Client userdata (one easy handle reused for every blocking request, so the connection is kept
   alive; a share handle for DNS, TLS sessions and connections; prebuilt base headers; the API key held only
   inside libcurl's header list) and the blocking request loop, whose attempts are attempt.c's steps. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include "client.h"
#include "attempt.h"
#include "clock.h"
#include "interrupt.h"
#include "multi.h"
#include "options.h"
#include "request.h"


/* ---- lifetime -------------------------------------------------------------------------------------------- */

static void cleanse(void *p, size_t n) {
  volatile unsigned char *v = (volatile unsigned char *)p;
  while (n--) *v++ = 0;
}

/* the one idempotent release behind close(), __gc and __close */
static void client_release(sm_client *c) {
  struct curl_slist *h;
  sm_multi_release(c);                       /* transfers in flight leave the multi before anything is freed */
  sm_xfer_free(&c->x);                       /* the easy handle goes before the share it uses */
  if (c->share) { curl_share_cleanup(c->share); c->share = NULL; }
  for (h = c->headers; h; h = h->next)       /* the key lives in one of these */
    if (h->data) cleanse(h->data, strlen(h->data));
  curl_slist_free_all(c->headers);
  c->headers = NULL;
  c->key = NULL;
  c->key_len = 0;
  free(c->base_url);
  c->base_url = NULL;
  c->open = 0;
}

static sm_client *check_client(lua_State *L, int idx) {
  return (sm_client *)luaL_checkudata(L, idx, SM_CLIENT_MT);
}

sm_client *sm_client_check_open(lua_State *L, int idx) {
  sm_client *c = check_client(L, idx);
  if (!c->open) luaL_error(L, "sigmamind: attempt to use a closed client");
  return c;
}

static int l_client_close(lua_State *L) {
  sm_client *c = check_client(L, 1);
  if (c->busy) return luaL_error(L, "sigmamind: cannot close a client while it is performing a request");
  client_release(c);
  return 0;
}

static int l_client_gc(lua_State *L) {
  sm_client *c = check_client(L, 1);
  client_release(c);
  return 0;
}

static int l_client_tostring(lua_State *L) {
  sm_client *c = check_client(L, 1);
  if (!c->open) lua_pushliteral(L, "sigmamind.client(closed)");
  else lua_pushfstring(L, "sigmamind.client(%s, key=%s...redacted)", c->base_url, c->key_hint);
  return 1;
}

/* ---- construction ---------------------------------------------------------------------------------------- */

static int has_ctl(const char *s, size_t len) {
  size_t i;
  for (i = 0; i < len; i++)
    if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') return 1;
  return 0;
}

static const char *opt_string(lua_State *L, const char *name, const char *def, size_t *len) {
  const char *s;
  lua_getfield(L, 1, name);
  if (lua_isnil(L, -1)) { lua_pop(L, 1); if (len) *len = def ? strlen(def) : 0; return def; }
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "sigmamind.new: %s: expected a string, got %s", name, luaL_typename(L, -1));
  s = lua_tolstring(L, -1, len);
  lua_pop(L, 1);                                  /* anchored by the options table */
  return s;
}

static double opt_number(lua_State *L, const char *name, double def, double min) {
  double d;
  lua_getfield(L, 1, name);
  if (lua_isnil(L, -1)) { lua_pop(L, 1); return def; }
  if (lua_type(L, -1) != LUA_TNUMBER)
    luaL_error(L, "sigmamind.new: %s: expected a number, got %s", name, luaL_typename(L, -1));
  d = lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (!(d >= min) || d == HUGE_VAL) {
    char msg[160];
    snprintf(msg, sizeof msg, "sigmamind.new: %s: expected a finite number >= %g, got %g", name, min, d);
    luaL_error(L, "%s", msg);
  }
  return d;
}

static int ieq(const char *a, size_t alen, const char *b) {
  return alen == strlen(b) && strncasecmp(a, b, alen) == 0;
}

/* A literal loopback address (IPv4 127.0.0.0/8 as a strict dotted quad, IPv6 ::1 in brackets) or
   "localhost": a name that only looks like one ("127.1.1.1.1") goes to DNS, then anywhere. */
static int is_loopback(const char *h, size_t len) {
  char buf[64];
  unsigned char a[16];
  static const unsigned char v6_loopback[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
  if (ieq(h, len, "localhost")) return 1;
  if (len >= 2 && h[0] == '[' && h[len - 1] == ']') {
    if (len - 2 >= sizeof buf) return 0;
    memcpy(buf, h + 1, len - 2);
    buf[len - 2] = '\0';
    return inet_pton(AF_INET6, buf, a) == 1 && memcmp(a, v6_loopback, 16) == 0;
  }
  if (len >= sizeof buf) return 0;
  memcpy(buf, h, len);
  buf[len] = '\0';
  return inet_pton(AF_INET, buf, a) == 1 && a[0] == 127;
}

/* checks base_url and returns its length without trailing slashes */
static size_t check_base_url(lua_State *L, const char *u, size_t len, int insecure) {
  size_t p, hs, he;
  int https;
  if (has_ctl(u, len)) luaL_error(L, "sigmamind.new: base_url must not contain CR, LF or NUL");
  if (len > 8 && strncasecmp(u, "https://", 8) == 0) { https = 1; p = 8; }
  else if (len > 7 && strncasecmp(u, "http://", 7) == 0) { https = 0; p = 7; }
  else return (size_t)luaL_error(L, "sigmamind.new: base_url: expected an http:// or https:// URL");
  if (memchr(u, '?', len) || memchr(u, '#', len) || memchr(u, ' ', len))
    luaL_error(L, "sigmamind.new: base_url must not contain a query, a fragment or spaces");
  hs = p;
  while (p < len && u[p] != '/') p++;
  he = p;
  if (memchr(u + hs, '@', he - hs)) luaL_error(L, "sigmamind.new: base_url must not contain credentials");
  /* host without the port */
  if (hs < he && u[hs] == '[') {
    const char *rb = (const char *)memchr(u + hs, ']', he - hs);
    if (!rb) luaL_error(L, "sigmamind.new: base_url: bad IPv6 host");
    p = (size_t)(rb - u) + 1;
  } else {
    p = hs;
    while (p < he && u[p] != ':') p++;
  }
  if (p == hs) luaL_error(L, "sigmamind.new: base_url: no host");
  if (!https && !insecure && !is_loopback(u + hs, p - hs))
    luaL_error(L, "sigmamind.new: base_url: plain http:// is only allowed to a loopback host "
                  "(a literal 127.0.0.0/8 or [::1] address, or localhost) unless insecure = true");
  while (len > he && u[len - 1] == '/') len--;
  return len;
}

/* libcurl looks the proxy variables up on every transfer it starts (a getenv of up to six names, and copies);
   they are read here once, by libcurl's own rules for the base URL's scheme, and given to it as options, which
   stops the lookups: "<scheme>_proxy" (and for https "HTTPS_PROXY"), else "all_proxy", "ALL_PROXY"; an empty
   variable counts as unset. "" as CURLOPT_PROXY means no proxy, as CURLOPT_NOPROXY no exceptions. */
static const char *env_var(const char *const *names) {
  for (; *names; names++) {
    const char *v = getenv(*names);
    if (v && v[0]) return v;
  }
  return NULL;
}

static const char *env_proxy(int https) {
  static const char *const http[] = { "http_proxy", "all_proxy", "ALL_PROXY", NULL };
  static const char *const tls[] = { "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", NULL };
  const char *v = env_var(https ? tls : http);
  return v ? v : "";
}

static const char *env_noproxy(void) {
  static const char *const names[] = { "no_proxy", "NO_PROXY", NULL };
  const char *v = env_var(names);
  return v ? v : "";
}

static void add_header(lua_State *L, sm_client *c, const char *h) {
  struct curl_slist *n = curl_slist_append(c->headers, h);
  if (!n) luaL_error(L, "sigmamind.new: out of memory");
  c->headers = n;
}

static const char *const upload_modes[] = { "json", "multipart", NULL };

/* core.new(opts): the Lua layer has checked option names and filled defaults; this checks what C relies on */
int l_core_new(lua_State *L) {
  size_t klen, ulen, ualen, clen, plen, uplen;
  const char *key, *url, *ua, *ca_file, *proxy, *upload;
  int insecure;
  double max_bytes;
  sm_client *c;
  CURLcode rc;
  char *h;

  luaL_checktype(L, 1, LUA_TTABLE);
  key = opt_string(L, "api_key", NULL, &klen);
  if (!key || klen == 0) luaL_error(L, "sigmamind.new: api_key: expected a non-empty string");
  if (has_ctl(key, klen)) luaL_error(L, "sigmamind.new: api_key must not contain CR, LF or NUL");
  url = opt_string(L, "base_url", "https://api.sigmamind.ai", &ulen);
  ua = opt_string(L, "user_agent", NULL, &ualen);
  if (ua && has_ctl(ua, ualen)) luaL_error(L, "sigmamind.new: user_agent must not contain CR, LF or NUL");
  ca_file = opt_string(L, "ca_file", NULL, &clen);
  if (ca_file && has_ctl(ca_file, clen)) luaL_error(L, "sigmamind.new: ca_file must not contain CR, LF or NUL");
  proxy = opt_string(L, "proxy", NULL, &plen);
  if (proxy && has_ctl(proxy, plen)) luaL_error(L, "sigmamind.new: proxy must not contain CR, LF or NUL");
  lua_getfield(L, 1, "insecure");
  insecure = lua_toboolean(L, -1);
  lua_pop(L, 1);
  ulen = check_base_url(L, url, ulen, insecure);
  if (strncasecmp(url, "https://", 8) == 0) {
    if (!proxy) proxy = env_proxy(1);      /* a proxy sees a CONNECT: the key travels inside TLS */
  } else if (!insecure) {
    /* plain http is allowed because the bytes stay on this host: a proxy (even on loopback, which
       may forward to a parent) would read the key, so the request goes straight to the host */
    if (proxy && proxy[0])
      luaL_error(L, "sigmamind.new: proxy: a plain http:// base_url is sent directly, never through a proxy "
                    "(the proxy would read the API key), unless insecure = true");
    proxy = "";
  } else if (!proxy) {
    proxy = env_proxy(0);
  }
  lua_getfield(L, 1, "on_event");
  if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TFUNCTION)
    luaL_error(L, "sigmamind.new: on_event: expected a function, got %s", luaL_typename(L, -1));
  lua_pop(L, 1);
  max_bytes = opt_number(L, "max_response_bytes", 8.0 * 1024 * 1024, 1);
  upload = opt_string(L, "campaign_upload", "json", &uplen);
  if (uplen != strlen(upload) || (strcmp(upload, "json") != 0 && strcmp(upload, "multipart") != 0))
    luaL_error(L, "sigmamind.new: campaign_upload: expected \"json\" or \"multipart\", got \"%s\"", upload);

  /* zeroed and given its metatable before anything is acquired: __gc can always release it */
  c = (sm_client *)lua_newuserdatauv(L, sizeof *c, 2);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, SM_CLIENT_MT);
  lua_getfield(L, 1, "on_event");
  lua_setiuservalue(L, -2, SM_UV_ON_EVENT);
  c->open = 1;
  c->policy.timeout = opt_number(L, "timeout", 30, 0.001);
  c->policy.connect_timeout = opt_number(L, "connect_timeout", 10, 0.001);
  c->policy.deadline = opt_number(L, "deadline", 120, 0.001);
  {                                 /* capped at 1000 before the cast: a larger double would not fit a long */
    double retries = opt_number(L, "max_retries", 2, 0);
    c->policy.max_retries = retries > 1000 ? 1000 : (long)retries;
  }
  c->campaign_form = upload[0] == 'm';
  c->x.max_bytes = max_bytes > 1e15 ? (size_t)1e15 : (size_t)max_bytes;
  lua_getfield(L, 1, "keep_nulls");
  if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TBOOLEAN)
    luaL_error(L, "sigmamind.new: keep_nulls: expected a boolean, got %s", luaL_typename(L, -1));
  c->x.keep_nulls = lua_toboolean(L, -1);
  lua_pop(L, 1);
  c->x.interruptible = 1;
  c->rng = (uint64_t)(sm_now() * 1e9) ^ (uint64_t)(uintptr_t)c ^ 0x9E3779B97F4A7C15ull;
  if (c->rng == 0) c->rng = 1;
  memcpy(c->key_hint, key, klen >= 8 ? 3 : 0);

  if (!(c->base_url = (char *)malloc(ulen + 1))) return luaL_error(L, "sigmamind.new: out of memory");
  memcpy(c->base_url, url, ulen);
  c->base_url[ulen] = '\0';
  c->base_len = ulen;

  if (!(c->x.easy = curl_easy_init())) return luaL_error(L, "sigmamind.new: curl_easy_init failed");
  if (!(c->share = curl_share_init())) return luaL_error(L, "sigmamind.new: curl_share_init failed");
  /* one Lua state is single-threaded: the share needs no lock callbacks */
  curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);

  /* the key header is built in C memory, copied by libcurl, then wiped */
  if (!(h = (char *)malloc(klen + 12))) return luaL_error(L, "sigmamind.new: out of memory");
  memcpy(h, "X-API-Key: ", 11);
  memcpy(h + 11, key, klen);
  h[11 + klen] = '\0';
  c->headers = curl_slist_append(c->headers, h);
  cleanse(h, klen + 12);
  free(h);
  if (!c->headers) return luaL_error(L, "sigmamind.new: out of memory");
  if (klen >= 8) { c->key = c->headers->data + 11; c->key_len = klen; }
  add_header(L, c, "Content-Type: application/json");
  add_header(L, c, "Accept: application/json");
  if (ua) lua_pushfstring(L, "User-Agent: %s", ua);
  else lua_pushfstring(L, "User-Agent: lua-sigmamind/%s libcurl/%s", SM_VERSION,
                       curl_version_info(CURLVERSION_NOW)->version);
  add_header(L, c, lua_tostring(L, -1));
  lua_pop(L, 1);
  add_header(L, c, "Expect:");

  rc = sm_xfer_init(&c->x, c->share, c->headers, ca_file, proxy, env_noproxy());
  if (rc != CURLE_OK) return luaL_error(L, "sigmamind.new: %s", curl_easy_strerror(rc));
  return 1;
}

/* ---- the blocking loop ----------------------------------------------------------------------------------- */

/* the error on top, of the attempt before a wait that Ctrl-C cut short, becomes the operation's: interrupted */
static void interrupted_wait(lua_State *L) {
  lua_pushliteral(L, "interrupted"); lua_setfield(L, -2, "kind");
  lua_pushboolean(L, 0); lua_setfield(L, -2, "retryable");
  lua_getfield(L, -1, "message");
  lua_pushfstring(L, "interrupted (SIGINT) while waiting to try again after: %s",
                  lua_isstring(L, -1) ? lua_tostring(L, -1) : "a failed attempt");
  lua_setfield(L, -3, "message");
  lua_pop(L, 1);
}

/* runs protected (busy is cleared by the caller whatever happens); stack: self, name, args, params, opts */
static int request_run(lua_State *L) {
  sm_client *c = (sm_client *)lua_touserdata(L, 1);
  sm_attempt a;
  if (!sm_attempt_open(L, 1, &a)) return 2;
  for (;;) {
    double delay;
    int outcome;
    CURLcode rc = sm_attempt_begin(L, 1, &a, &c->x);
    if (rc != CURLE_OK) return luaL_error(L, "sigmamind: cannot set up the transfer: %s", curl_easy_strerror(rc));
    if (sm_sigint_pending()) {       /* Ctrl-C came while on_event ran: this attempt never starts */
      c->x.interrupted = 1;
      rc = CURLE_ABORTED_BY_CALLBACK;
    } else {
      rc = curl_easy_perform(c->x.easy);
    }
    outcome = sm_attempt_finish(L, 1, &a, &c->x, rc, &delay);
    if (outcome == SM_OK) {          /* value, meta: value, nil, meta */
      lua_pushnil(L);
      lua_insert(L, -2);
      return 3;
    }
    if (outcome == SM_FAIL || sm_sigint_sleep(delay)) {
      if (outcome != SM_FAIL) interrupted_wait(L);
      luaL_pushfail(L);
      lua_insert(L, -2);
      return 2;
    }
    lua_pop(L, 1);                   /* the error of this attempt */
  }
}

/* client:request(name, args, params, opts) --> value, nil, meta | nil, err. Ctrl-C (SIGINT) during it ends it
   within moments, then reaches the handler that was there before (interrupt.h). */
static int l_client_request(lua_State *L) {
  sm_client *c = sm_client_check_open(L, 1);
  const sm_endpoint *ep = sm_request_check(L);
  sm_reqopts o;
  sm_sigint si;
  int status;
  sm_reqopts_check(L, 5, ep, &o);
  if (c->busy) return luaL_error(L, "sigmamind: client is busy (on_event must not use its own client)");
  lua_settop(L, 5);
  c->busy = 1;
  lua_pushcfunction(L, request_run);
  lua_insert(L, 1);
  sm_sigint_begin(&si);
  status = lua_pcall(L, 5, LUA_MULTRET, 0);
  c->busy = 0;
  sm_sigint_end(&si);
  if (status != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}

/* client:info() --> { connects = n, base_url = s, server_clock_offset = s | nil }: what a keep-alive check and
   reconciliation need, nothing secret */
static int l_client_info(lua_State *L) {
  sm_client *c = sm_client_check_open(L, 1);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, c->connects); lua_setfield(L, -2, "connects");
  lua_pushstring(L, c->base_url); lua_setfield(L, -2, "base_url");
  if (c->clock_known) { lua_pushnumber(L, c->clock_offset); lua_setfield(L, -2, "server_clock_offset"); }
  return 1;
}

/* client:_upload([mode]) --> mode: how campaigns.create goes ("json" or "multipart"); with mode, from now on.
   The Lua layer switches a client to "multipart" when a server answers JSON with 415. */
static int l_client_upload(lua_State *L) {
  sm_client *c = sm_client_check_open(L, 1);
  if (!lua_isnoneornil(L, 2)) c->campaign_form = luaL_checkoption(L, 2, NULL, upload_modes);
  lua_pushstring(L, upload_modes[c->campaign_form ? 1 : 0]);
  return 1;
}

void sm_client_init(lua_State *L) {
  static const luaL_Reg methods[] = {
    { "request", l_client_request }, { "close", l_client_close }, { "info", l_client_info },
    { "_upload", l_client_upload }, { NULL, NULL }
  };
  static const luaL_Reg meta[] = {
    { "__gc", l_client_gc }, { "__close", l_client_close }, { "__tostring", l_client_tostring }, { NULL, NULL }
  };
  luaL_newmetatable(L, SM_CLIENT_MT);
  luaL_setfuncs(L, meta, 0);
  luaL_newlib(L, methods);
  sm_multi_register(L);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}
