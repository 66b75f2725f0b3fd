/* prepare.c: the attempt policy without libcurl (how a reply or a transport failure becomes a value, an error
   and a retry decision), shared by the blocking loop (transfer.c/client.c) and, through core.prepare and
   core.classify, by transports written in Lua (the OpenResty cosocket transport, lua/sigmamind/ngx.lua). */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "sm.h"

#define RETRY_AFTER_CAP 60.0

/* ---- the policy --------------------------------------------------------------------------------------------- */

/* Retry-After: delta seconds or an HTTP-date; -1 when absent or unreadable. curl_getdate is a pure parser. */
double sm_parse_retry_after(const char *v) {
  char *end;
  double d;
  time_t when;
  if (!v || !*v) return -1;
  if (isdigit((unsigned char)*v)) {
    d = strtod(v, &end);
    return *end == '\0' ? d : -1;
  }
  when = curl_getdate(v, NULL);
  if (when == -1) return -1;
  d = difftime(when, time(NULL));
  return d < 0 ? 0 : d;
}

/* 0.5 s * 2^(n-1), capped at 8 s, equal jitter: d/2 + u * d/2 with u in [0, 1) */
double sm_backoff_at(int attempt, double u) {
  double d = 0.5 * ldexp(1.0, attempt < 1 ? 0 : attempt - 1 < 10 ? attempt - 1 : 10);
  if (d > 8) d = 8;
  return d / 2 + u * d / 2;
}

int sm_max_attempts(long max_retries) {
  return (int)(max_retries > 1000 ? 1001 : max_retries + 1);
}

static const char *status_kind(long status) {
  if (status == 401 || status == 403) return "auth";
  if (status == 404) return "not_found";
  if (status == 429) return "rate_limited";
  if (status >= 500) return "server";
  return "rejected";
}

/* pushes an error table with the common fields; returns its stack index */
static int push_error(lua_State *L, const sm_req *r, const char *kind, long status, int sent, int retryable) {
  lua_createtable(L, 0, 14);
  lua_pushstring(L, kind); lua_setfield(L, -2, "kind");
  if (status > 0) { lua_pushinteger(L, status); lua_setfield(L, -2, "status"); }
  lua_pushstring(L, r->ep->method); lua_setfield(L, -2, "method");
  lua_pushlstring(L, r->path, r->path_len); lua_setfield(L, -2, "path");
  lua_pushboolean(L, sent); lua_setfield(L, -2, "sent");
  lua_pushboolean(L, retryable); lua_setfield(L, -2, "retryable");
  sm_error_setmeta(L, -1);
  return lua_gettop(L);
}

static void set_str(lua_State *L, int err, const char *name, const char *v) {
  if (v && *v) { lua_pushstring(L, v); lua_setfield(L, err, name); }
}

int sm_classify_http(lua_State *L, const sm_req *r, long status, const char *body, size_t len,
                     const char *request_id, const char *retry_after, double *delay) {
  int is_post = strcmp(r->ep->method, "POST") == 0;
  int err, retryable;
  double ra;
  *delay = -1;
  if (status >= 200 && status < 300) {
    if (status == 204 || len == 0) { lua_pushboolean(L, 1); return SM_OK; }
    if (sm_json_decode(L, body, len)) return SM_OK;
    /* nil, msg on the stack */
    err = push_error(L, r, "decode", status, 1, 0);
    lua_pushfstring(L, "response is not JSON: %s", lua_tostring(L, -2));
    lua_setfield(L, err, "message");
    lua_replace(L, err - 2);
    lua_settop(L, err - 2);
    err -= 2;
    lua_pushlstring(L, body, len); lua_setfield(L, err, "body");
    set_str(L, err, "request_id", request_id);
    return SM_FAIL;
  }
  /* an HTTP error status */
  retryable = is_post ? status == 429 : (status == 408 || status == 429 || status >= 500);
  ra = sm_parse_retry_after(retry_after);
  err = push_error(L, r, status_kind(status), status, 1, retryable);
  if (len > 0) {
    lua_pushlstring(L, body, len); lua_setfield(L, err, "body");
    if (sm_json_decode(L, body, len) && lua_type(L, -1) == LUA_TTABLE &&
        lua_getfield(L, -1, "message") == LUA_TSTRING)
      lua_setfield(L, err, "message");
    lua_settop(L, err);
  }
  set_str(L, err, "request_id", request_id);
  if (ra >= 0) {
    if (ra > RETRY_AFTER_CAP) ra = RETRY_AFTER_CAP;
    lua_pushnumber(L, ra); lua_setfield(L, err, "retry_after");
    *delay = ra;
  }
  return retryable ? SM_RETRY : SM_FAIL;
}

int sm_classify_too_large(lua_State *L, const sm_req *r, long status, size_t max_bytes, const char *request_id) {
  int err = push_error(L, r, "too_large", status, 1, 0);
  lua_pushfstring(L, "response body larger than max_response_bytes (%I)", (LUA_INTEGER)max_bytes);
  lua_setfield(L, err, "message");
  set_str(L, err, "request_id", request_id);
  return SM_FAIL;
}

/* No HTTP reply. A request that may have reached the server (sent) is not resent when it is a POST: a second
   POST /v1/calls rings a person twice. fatal: retrying cannot change the answer (certificates, memory). */
int sm_classify_failure(lua_State *L, const sm_req *r, long status, const char *kind, const char *msg, int sent,
                        int fatal, int capped, const char *request_id) {
  int is_post = strcmp(r->ep->method, "POST") == 0;
  int retryable = !fatal && (!is_post || !sent);
  int err = push_error(L, r, kind, status, sent, retryable);
  if (capped) lua_pushfstring(L, "deadline exhausted (%s)", msg);
  else lua_pushstring(L, msg);
  lua_setfield(L, err, "message");
  set_str(L, err, "request_id", request_id);
  return retryable ? SM_RETRY : SM_FAIL;
}

/* the wait before the next attempt, or -1 when the operation must give up now: attempts left, and the wait
   ends before the deadline. retry_after < 0: none given (backoff with jitter u in [0, 1)). */
double sm_next_delay(const sm_cfg *cfg, int attempt, double retry_after, double u, double elapsed) {
  double delay;
  if (attempt >= sm_max_attempts(cfg->max_retries)) return -1;
  delay = retry_after >= 0 ? retry_after : sm_backoff_at(attempt, u);
  return elapsed + delay < cfg->deadline ? delay : -1;
}

/* ---- core.prepare ------------------------------------------------------------------------------------------- */

/* core.prepare(name, args, params) --> method, path_and_query, body|nil, path | nil, err
   Validation, path escaping, query and JSON body exactly as client:request does them; nothing is sent. */
static int prepare_l(lua_State *L) {
  const sm_endpoint *ep;
  sm_req r;
  memset(&r, 0, sizeof r);
  lua_settop(L, 3);
  lua_pushnil(L);                    /* client:request's argument positions: (self, name, args, params) */
  lua_insert(L, 1);
  ep = sm_check_request(L);
  if (!sm_prepare(L, ep, 3, 4, "", 0, &r)) { luaL_pushfail(L); lua_insert(L, -2); return 2; }
  lua_pushstring(L, ep->method);
  lua_pushstring(L, r.url);
  if (r.body) lua_pushlstring(L, r.body, r.body_len); else lua_pushnil(L);
  lua_pushlstring(L, r.path, r.path_len);
  return 4;
}

/* ---- core.classify ------------------------------------------------------------------------------------------ */

static double opt_num(lua_State *L, int t, const char *name, double def) {
  double d = def;
  if (lua_getfield(L, t, name) == LUA_TNUMBER) d = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return d;
}

static const char *header(lua_State *L, int t, const char *name) {
  const char *v = NULL;
  if (lua_isnoneornil(L, t)) return NULL;
  if (lua_getfield(L, t, name) == LUA_TSTRING) v = lua_tostring(L, -1);
  lua_pop(L, 1);                                /* anchored in the headers table */
  return v;
}

/* jitter without C state: the monotonic clock's nanoseconds through splitmix64 */
static double jitter(void) {
  uint64_t z = (uint64_t)(sm_now() * 1e9) + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double)(z >> 11) / 9007199254740992.0;
}

/* core.classify(method, path, status, headers, body, attempt, elapsed, fail, sent, opts)
     --> value | nil, err, delay|nil
   One attempt's outcome as the blocking loop would judge it. status/headers/body: the reply (headers keyed by
   lower-case name), or fail: "connect" (no connection was made), "timeout", "network", "fatal" (retrying cannot
   help: certificate verification, say) or "too_large"; sent: the request may have reached the server.
   opts: max_retries, deadline, max_response_bytes, message (fail's text), capped (the attempt's timeout was
   cut short by the deadline). delay: seconds to wait before the next attempt, only when one is due. */
static int classify_l(lua_State *L) {
  static const char *const fails[] = { "connect", "timeout", "network", "fatal", "too_large", NULL };
  sm_endpoint ep;
  sm_req r;
  sm_cfg cfg;
  const char *method = luaL_checkstring(L, 1);
  double st = luaL_optnumber(L, 3, 0), at = luaL_checknumber(L, 6), mr, mb;
  double elapsed = luaL_checknumber(L, 7), ra = -1, delay;
  long status;
  int attempt, outcome, err;
  size_t blen = 0;
  const char *body;
  memset(&ep, 0, sizeof ep);
  memset(&r, 0, sizeof r);
  ep.method = method;
  r.ep = &ep;
  r.path = luaL_checklstring(L, 2, &r.path_len);
  if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
  body = luaL_optlstring(L, 5, "", &blen);
  luaL_checktype(L, 10, LUA_TTABLE);
  lua_settop(L, 10);
  /* numbers range-checked before any cast to an integer type: casting NaN or 1e300 is undefined behaviour */
  luaL_argcheck(L, st >= 0 && st <= 999, 3, "expected an HTTP status (0 to 999)");
  luaL_argcheck(L, at >= 1, 6, "expected an attempt number >= 1");
  status = (long)st;
  attempt = at < 1e9 ? (int)at : 1000000000;
  mr = opt_num(L, 10, "max_retries", 2);
  mb = opt_num(L, 10, "max_response_bytes", 8.0 * 1024 * 1024);
  luaL_argcheck(L, mr >= 0, 10, "max_retries: expected a number >= 0");
  luaL_argcheck(L, mb >= 0, 10, "max_response_bytes: expected a number >= 0");
  cfg.max_retries = mr > 1000 ? 1000 : (long)mr;          /* as core.new caps it */
  cfg.deadline = opt_num(L, 10, "deadline", 120);
  cfg.timeout = cfg.connect_timeout = 0;
  if (lua_isnil(L, 8)) {
    outcome = sm_classify_http(L, &r, status, body, blen, header(L, 4, "x-request-id"),
                               header(L, 4, "retry-after"), &ra);
  } else {
    int f = luaL_checkoption(L, 8, NULL, fails), sent = f != 0 && lua_toboolean(L, 9);
    const char *msg;
    lua_getfield(L, 10, "message");
    msg = lua_isstring(L, -1) ? lua_tostring(L, -1) : fails[f];
    lua_getfield(L, 10, "capped");
    if (f == 4) {
      outcome = sm_classify_too_large(L, &r, status, mb > 1e15 ? (size_t)1e15 : (size_t)mb,
                                      header(L, 4, "x-request-id"));
    } else {
      outcome = sm_classify_failure(L, &r, status, f == 1 ? "timeout" : "network", msg, sent, f == 3,
                                    f == 1 && lua_toboolean(L, 12), header(L, 4, "x-request-id"));
    }
  }
  if (outcome == SM_OK) return 1;
  err = lua_gettop(L);
  lua_pushinteger(L, attempt); lua_setfield(L, err, "attempts");
  lua_pushnumber(L, elapsed); lua_setfield(L, err, "elapsed");
  luaL_pushfail(L);
  lua_insert(L, err);
  if (outcome == SM_RETRY && (delay = sm_next_delay(&cfg, attempt, ra, jitter(), elapsed)) >= 0) {
    lua_pushnumber(L, delay);
    return 3;
  }
  return 2;
}

/* core.mask_path(path): E.164 numbers in an encoded path masked, as on_event shows them */
static int mask_path_l(lua_State *L) {
  size_t len;
  const char *p = luaL_checklstring(L, 1, &len);
  sm_push_masked_path(L, p, len);
  return 1;
}

void sm_prepare_register(lua_State *L) {
  static const luaL_Reg funcs[] = {
    { "prepare", prepare_l }, { "classify", classify_l }, { "mask_path", mask_path_l }, { NULL, NULL }
  };
  luaL_setfuncs(L, funcs, 0);
}
