/* policy.c: the attempt policy without libcurl: how a reply or a transport failure becomes a value or a typed
   error, whether it may be retried, the wait (Retry-After or backoff), the attempts allowed, and how much of
   the deadline is left (the one place that knows). The C loops reach it through attempt.c and transfer.c,
   transports written in Lua (lua/sigmamind/ngx.lua) through core.classify. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>
#include "policy.h"
#include "clock.h"
#include "error.h"
#include "json.h"

#define RETRY_AFTER_CAP 60.0

/* ---- the rules ---------------------------------------------------------------------------------------------- */

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
static double backoff_at(int attempt, double u) {
  double d = 0.5 * ldexp(1.0, attempt < 1 ? 0 : attempt - 1 < 10 ? attempt - 1 : 10);
  if (d > 8) d = 8;
  return d / 2 + u * d / 2;
}

static int max_attempts(long max_retries) {
  return (int)(max_retries > 1000 ? 1001 : max_retries + 1);
}

double sm_attempt_timeout(const sm_policy *p, double elapsed, double *connect_timeout, int *capped) {
  double t = p->timeout, left = p->deadline - elapsed;
  *capped = 0;
  if (left < t) { t = left; *capped = 1; }
  *connect_timeout = p->connect_timeout < t ? p->connect_timeout : t;
  return t;
}

double sm_next_delay(const sm_policy *p, int attempt, double retry_after, double u, double elapsed) {
  double delay;
  if (attempt >= max_attempts(p->max_retries)) return -1;
  delay = retry_after >= 0 ? retry_after : backoff_at(attempt, u);
  return elapsed + delay < p->deadline ? delay : -1;
}

double sm_jitter(uint64_t *state) {
  uint64_t x = *state;
  x ^= x << 13; x ^= x >> 7; x ^= x << 17;
  *state = x;
  return (double)(x >> 11) / 9007199254740992.0;
}

/* ---- classification ----------------------------------------------------------------------------------------- */

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

int sm_classify_http(lua_State *L, const sm_req *r, const sm_reply *reply, double *retry_after) {
  long status = reply->status;
  const char *body = reply->body;
  size_t len = reply->len;
  int is_post = strcmp(r->ep->method, "POST") == 0;
  int err, retryable;
  double ra;
  *retry_after = -1;
  if (status >= 200 && status < 300) {
    if (status == 204 || len == 0) { lua_pushboolean(L, 1); return SM_OK; }
    if (sm_json_decode_opt(L, body, len, !reply->keep_nulls)) return SM_OK;
    /* nil, msg on the stack */
    err = push_error(L, r, "decode", status, 1, 0);
    lua_pushfstring(L, "response is not JSON: %s", lua_tostring(L, -2));
    lua_setfield(L, err, "message");
    lua_replace(L, err - 2);
    lua_settop(L, err - 2);
    err -= 2;
    lua_pushlstring(L, body, len); lua_setfield(L, err, "body");
    set_str(L, err, "request_id", reply->request_id);
    return SM_FAIL;
  }
  /* an HTTP error status */
  retryable = is_post ? status == 429 : (status == 408 || status == 429 || status >= 500);
  ra = sm_parse_retry_after(reply->retry_after);
  err = push_error(L, r, status_kind(status), status, 1, retryable);
  if (len > 0) {
    lua_pushlstring(L, body, len); lua_setfield(L, err, "body");
    if (sm_json_decode(L, body, len) && lua_type(L, -1) == LUA_TTABLE &&
        lua_getfield(L, -1, "message") == LUA_TSTRING)
      lua_setfield(L, err, "message");
    lua_settop(L, err);
  }
  set_str(L, err, "request_id", reply->request_id);
  if (ra >= 0) {
    if (ra > RETRY_AFTER_CAP) ra = RETRY_AFTER_CAP;
    lua_pushnumber(L, ra); lua_setfield(L, err, "retry_after");
    *retry_after = ra;
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
int sm_classify_failure(lua_State *L, const sm_req *r, const sm_failure *f) {
  int is_post = strcmp(r->ep->method, "POST") == 0;
  int retryable = !f->fatal && (!is_post || !f->sent);
  int err = push_error(L, r, f->kind, f->status, f->sent, retryable);
  if (f->capped) lua_pushfstring(L, "deadline exhausted (%s)", f->message);
  else lua_pushstring(L, f->message);
  lua_setfield(L, err, "message");
  set_str(L, err, "request_id", f->request_id);
  return retryable ? SM_RETRY : SM_FAIL;
}

/* ---- core.classify ------------------------------------------------------------------------------------------ */

/* a number field of the options table: def when absent (or, unless strict, not a number) */
static double opt_num(lua_State *L, const char *name, double def, int strict) {
  double d = def;
  int t = lua_getfield(L, 1, name);
  if (t == LUA_TNUMBER) d = lua_tonumber(L, -1);
  else if (strict && t != LUA_TNIL) luaL_argerror(L, 1, lua_pushfstring(L, "%s: expected a number", name));
  lua_pop(L, 1);
  return d;
}

/* a string field of the options table, anchored in it; NULL when absent */
static const char *opt_str(lua_State *L, int t, const char *name, size_t *len) {
  const char *v = NULL;
  if (len) *len = 0;
  if (lua_getfield(L, t, name) == LUA_TSTRING) v = lua_tolstring(L, -1, len);
  lua_pop(L, 1);
  return v;
}

/* jitter without C state: the monotonic clock's nanoseconds through splitmix64 */
static double clock_jitter(void) {
  uint64_t z = (uint64_t)(sm_now() * 1e9) + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double)(z >> 11) / 9007199254740992.0;
}

/* core.classify{ method, path, status, headers, body, attempt, elapsed, fail, sent, message, capped,
                  max_retries, deadline, max_response_bytes, keep_nulls } --> value | nil, err, delay|nil
   One attempt's outcome as the C loops would judge it. status/headers/body: the reply (headers keyed by
   lower-case name), or fail: "connect" (no connection was made), "timeout", "network", "fatal" (retrying cannot
   help: certificate verification, say) or "too_large", with sent (the request may have reached the server),
   message (fail's text) and capped (the attempt's timeout was cut short by the deadline). keep_nulls: a 2xx
   body's JSON nulls decode as core.null (else object members that are null are left out, as the client does).
   delay: seconds to wait before the next attempt, only when one is due. */
int l_core_classify(lua_State *L) {
  static const char *const fails[] = { "connect", "timeout", "network", "fatal", "too_large", NULL };
  sm_endpoint ep;
  sm_req r;
  sm_policy policy;
  double st, at, mr, mb, elapsed, ra = -1, delay;
  long status;
  int attempt, outcome, err, headers;
  const char *request_id, *retry_after;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  memset(&ep, 0, sizeof ep);
  memset(&r, 0, sizeof r);
  if (!(ep.method = opt_str(L, 1, "method", NULL))) luaL_argerror(L, 1, "method: expected a string");
  if (!(r.path = opt_str(L, 1, "path", &r.path_len))) luaL_argerror(L, 1, "path: expected a string");
  r.ep = &ep;
  st = opt_num(L, "status", 0, 1);
  if (lua_getfield(L, 1, "attempt") != LUA_TNUMBER) luaL_argerror(L, 1, "attempt: expected a number");
  if (lua_getfield(L, 1, "elapsed") != LUA_TNUMBER) luaL_argerror(L, 1, "elapsed: expected a number");
  at = lua_tonumber(L, 2);
  elapsed = lua_tonumber(L, 3);
  lua_settop(L, 1);
  headers = lua_getfield(L, 1, "headers") == LUA_TTABLE ? 2 : 0;   /* stays at 2 */
  if (!headers && !lua_isnil(L, 2)) luaL_argerror(L, 1, "headers: expected a table");
  request_id = headers ? opt_str(L, headers, "x-request-id", NULL) : NULL;
  retry_after = headers ? opt_str(L, headers, "retry-after", NULL) : NULL;
  /* numbers range-checked before any cast to an integer type: casting NaN or 1e300 is undefined behaviour */
  luaL_argcheck(L, st >= 0 && st <= 999, 1, "status: expected an HTTP status (0 to 999)");
  luaL_argcheck(L, at >= 1, 1, "attempt: expected an attempt number >= 1");
  status = (long)st;
  attempt = at < 1e9 ? (int)at : 1000000000;
  mr = opt_num(L, "max_retries", 2, 0);
  mb = opt_num(L, "max_response_bytes", 8.0 * 1024 * 1024, 0);
  luaL_argcheck(L, mr >= 0, 1, "max_retries: expected a number >= 0");
  luaL_argcheck(L, mb >= 0, 1, "max_response_bytes: expected a number >= 0");
  policy.max_retries = mr > 1000 ? 1000 : (long)mr;          /* as core.new caps it */
  policy.deadline = opt_num(L, "deadline", 120, 0);
  policy.timeout = policy.connect_timeout = 0;
  if (lua_getfield(L, 1, "fail") == LUA_TNIL) {
    sm_reply reply;
    reply.status = status;
    reply.body = opt_str(L, 1, "body", &reply.len);
    if (!reply.body) reply.body = "";
    reply.request_id = request_id;
    reply.retry_after = retry_after;
    lua_getfield(L, 1, "keep_nulls");
    reply.keep_nulls = lua_toboolean(L, -1);
    lua_pop(L, 1);
    outcome = sm_classify_http(L, &r, &reply, &ra);
  } else {
    const char *fail = lua_tostring(L, -1);
    int f = 0;
    while (fails[f] && (!fail || lua_type(L, -1) != LUA_TSTRING || strcmp(fails[f], fail) != 0)) f++;
    if (!fails[f]) luaL_argerror(L, 1, "fail: expected connect, timeout, network, fatal or too_large");
    lua_getfield(L, 1, "sent");
    if (f == 4) {
      outcome = sm_classify_too_large(L, &r, status, mb > 1e15 ? (size_t)1e15 : (size_t)mb, request_id);
    } else {
      sm_failure fl;
      fl.status = status;
      fl.kind = f == 1 ? "timeout" : "network";
      fl.message = opt_str(L, 1, "message", NULL);
      if (!fl.message) fl.message = fails[f];
      fl.sent = f != 0 && lua_toboolean(L, -1);
      fl.fatal = f == 3;
      lua_getfield(L, 1, "capped");
      fl.capped = f == 1 && lua_toboolean(L, -1);
      lua_pop(L, 1);
      fl.request_id = request_id;
      outcome = sm_classify_failure(L, &r, &fl);
    }
  }
  if (outcome == SM_OK) return 1;
  err = lua_gettop(L);
  lua_pushinteger(L, attempt); lua_setfield(L, err, "attempts");
  lua_pushnumber(L, elapsed); lua_setfield(L, err, "elapsed");
  luaL_pushfail(L);
  lua_insert(L, err);
  if (outcome == SM_RETRY && (delay = sm_next_delay(&policy, attempt, ra, clock_jitter(), elapsed)) >= 0) {
    lua_pushnumber(L, delay);
    return 3;
  }
  return 2;
}
