/* transfer.c: one attempt of one request on one easy handle: set it up, let libcurl run it (blocking here;
   a multi handle later), then classify the outcome into a value or an error plus a retry decision.
   libcurl's callbacks only touch C memory owned by the sm_xfer; they never call Lua. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "sm.h"

#define RETRY_AFTER_CAP 60.0

void sm_buf_free(sm_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

static size_t on_body(char *ptr, size_t size, size_t n, void *ud) {
  sm_xfer *x = (sm_xfer *)ud;
  size_t len = size * n;
  if (len > x->max_bytes - x->body.len || x->body.len > x->max_bytes) { x->too_large = 1; return 0; }
  if (x->body.len + len > x->body.cap) {
    size_t cap = x->body.cap ? x->body.cap : 4096;
    char *p;
    while (cap < x->body.len + len) cap *= 2;
    if (cap > x->max_bytes + 1) cap = x->max_bytes + 1;
    p = (char *)realloc(x->body.data, cap);
    if (!p) { x->oom = 1; return 0; }
    x->body.data = p;
    x->body.cap = cap;
  }
  memcpy(x->body.data + x->body.len, ptr, len);
  x->body.len += len;
  return len;
}

/* copies a header's value, trimmed, into dst (truncated to fit) */
static void header_value(char *dst, size_t cap, const char *v, size_t len) {
  while (len > 0 && (*v == ' ' || *v == '\t')) { v++; len--; }
  while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' ' || v[len - 1] == '\t')) len--;
  if (len >= cap) len = cap - 1;
  memcpy(dst, v, len);
  dst[len] = '\0';
}

static int header_is(const char *h, size_t len, const char *name, size_t nlen) {
  return len > nlen && h[nlen] == ':' && strncasecmp(h, name, nlen) == 0;
}

static size_t on_header(char *h, size_t size, size_t n, void *ud) {
  sm_xfer *x = (sm_xfer *)ud;
  size_t len = size * n;
  if (len > 5 && memcmp(h, "HTTP/", 5) == 0) {      /* a new response (after a 1xx, say): forget the last */
    const char *sp = memchr(h, ' ', len);
    x->request_id[0] = x->retry_after[0] = '\0';
    x->header_status = sp ? strtol(sp + 1, NULL, 10) : 0;
  } else if (header_is(h, len, "content-length", 14)) {
    char v[32];
    header_value(v, sizeof v, h + 15, len - 15);
    if (x->header_status >= 200 && strtoull(v, NULL, 10) > (unsigned long long)x->max_bytes) {
      x->too_large = 1;
      return 0;                                   /* abort before any of the body is read */
    }
  } else if (header_is(h, len, "x-request-id", 12)) {
    header_value(x->request_id, sizeof x->request_id, h + 13, len - 13);
  } else if (header_is(h, len, "retry-after", 11)) {
    header_value(x->retry_after, sizeof x->retry_after, h + 12, len - 12);
  }
  return len;
}

/* Called right before a request goes out on a connection. libcurl resends a request by itself when a reused
   connection dies before any response byte (Curl_retry_request); for a POST that could create a second call,
   so the second send is refused and the attempt reported as sent and not retryable. */
static int on_prereq(void *ud, char *primary_ip, char *local_ip, int primary_port, int local_port) {
  sm_xfer *x = (sm_xfer *)ud;
  (void)primary_ip; (void)local_ip; (void)primary_port; (void)local_port;
  if (x->prereq++ > 0 && x->no_resend) { x->resend_blocked = 1; return CURL_PREREQFUNC_ABORT; }
  return CURL_PREREQFUNC_OK;
}

CURLcode sm_xfer_init(sm_xfer *x, CURLSH *share, struct curl_slist *headers, const char *ca_file,
                      const char *proxy) {
  CURLcode rc = CURLE_OK;
  CURL *e = x->easy;
#define SET(opt, v) do { if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, v); } while (0)
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_FOLLOWLOCATION, 0L);
  SET(CURLOPT_SSL_VERIFYPEER, 1L);
  SET(CURLOPT_SSL_VERIFYHOST, 2L);
  SET(CURLOPT_ERRORBUFFER, x->errbuf);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, x);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, x);
  SET(CURLOPT_HTTPHEADER, headers);
  SET(CURLOPT_PREREQFUNCTION, on_prereq);
  SET(CURLOPT_PREREQDATA, x);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  SET(CURLOPT_TCP_NODELAY, 1L);
  if (share) SET(CURLOPT_SHARE, share);
  if (ca_file) SET(CURLOPT_CAINFO, ca_file);
  if (proxy) SET(CURLOPT_PROXY, proxy);
#undef SET
  return rc;
}

void sm_xfer_free(sm_xfer *x) {
  if (x->easy) { curl_easy_cleanup(x->easy); x->easy = NULL; }
  sm_buf_free(&x->body);
}

static long to_ms(double s) {
  double ms = ceil(s * 1000.0);
  if (ms < 1) return 1;                /* 0 would mean "no timeout" to libcurl */
  if (ms > 86400000.0) return 86400000L;
  return (long)ms;
}

CURLcode sm_xfer_setup(sm_xfer *x, const sm_cfg *cfg, const sm_req *r, double budget, int *capped) {
  CURLcode rc = CURLE_OK;
  CURL *e = x->easy;
  const char *m = r->ep->method;
  double t = cfg->timeout;
  *capped = 0;
  if (budget < t) { t = budget; *capped = 1; }
  x->body.len = 0;
  x->too_large = x->oom = x->prereq = x->resend_blocked = 0;
  x->no_resend = strcmp(m, "POST") == 0;
  x->header_status = 0;
  x->request_id[0] = x->retry_after[0] = x->errbuf[0] = '\0';
#define SET(opt, v) do { if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, v); } while (0)
  SET(CURLOPT_URL, r->url);
  if (r->body) {
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDS, r->body);          /* pinned on the Lua stack for the whole request */
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
  } else {
    SET(CURLOPT_HTTPGET, 1L);
  }
  SET(CURLOPT_CUSTOMREQUEST, (strcmp(m, "GET") == 0 || strcmp(m, "POST") == 0) ? NULL : m);
  SET(CURLOPT_TIMEOUT_MS, to_ms(t));
  SET(CURLOPT_CONNECTTIMEOUT_MS, to_ms(cfg->connect_timeout < t ? cfg->connect_timeout : t));
  SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_bytes);
#undef SET
  return rc;
}

/* Retry-After: delta seconds or an HTTP-date; -1 when absent or unreadable */
static double parse_retry_after(const char *v) {
  char *end;
  double d;
  time_t when;
  if (!*v) return -1;
  if (isdigit((unsigned char)*v)) {
    d = strtod(v, &end);
    return *end == '\0' ? d : -1;
  }
  when = curl_getdate(v, NULL);
  if (when == -1) return -1;
  d = difftime(when, time(NULL));
  return d < 0 ? 0 : d;
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

int sm_xfer_classify(lua_State *L, sm_xfer *x, const sm_req *r, CURLcode rc, int attempt, int capped,
                     double *delay) {
  long status = 0;
  int is_post = strcmp(r->ep->method, "POST") == 0;
  int err;
  *delay = -1;
  (void)attempt;
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);

  if (rc == CURLE_OK && status >= 200 && status < 300) {
    if (status == 204 || x->body.len == 0) { lua_pushboolean(L, 1); return SM_OK; }
    if (sm_json_decode(L, x->body.data, x->body.len)) return SM_OK;
    /* nil, msg on the stack */
    err = push_error(L, r, "decode", status, 1, 0);
    lua_pushfstring(L, "response is not JSON: %s", lua_tostring(L, -2));
    lua_setfield(L, err, "message");
    lua_replace(L, err - 2);
    lua_settop(L, err - 2);
    err -= 2;
    lua_pushlstring(L, x->body.data, x->body.len); lua_setfield(L, err, "body");
    set_str(L, err, "request_id", x->request_id);
    return SM_FAIL;
  }

  if (rc == CURLE_OK) {                           /* an HTTP error status */
    int retryable = is_post ? status == 429 : (status == 408 || status == 429 || status >= 500);
    double ra = parse_retry_after(x->retry_after);
    err = push_error(L, r, status_kind(status), status, 1, retryable);
    if (x->body.len > 0) {
      lua_pushlstring(L, x->body.data, x->body.len); lua_setfield(L, err, "body");
      if (sm_json_decode(L, x->body.data, x->body.len) && lua_type(L, -1) == LUA_TTABLE &&
          lua_getfield(L, -1, "message") == LUA_TSTRING)
        lua_setfield(L, err, "message");
      lua_settop(L, err);
    }
    set_str(L, err, "request_id", x->request_id);
    if (ra >= 0) {
      if (ra > RETRY_AFTER_CAP) ra = RETRY_AFTER_CAP;
      lua_pushnumber(L, ra); lua_setfield(L, err, "retry_after");
      *delay = ra;
    }
    return retryable ? SM_RETRY : SM_FAIL;
  }

  if (x->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
    err = push_error(L, r, "too_large", status, 1, 0);
    lua_pushfstring(L, "response body larger than max_response_bytes (%I)", (LUA_INTEGER)x->max_bytes);
    lua_setfield(L, err, "message");
    set_str(L, err, "request_id", x->request_id);
    return SM_FAIL;
  }

  {
    const char *kind = "network", *msg = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
    int sent = 1, retryable;
    int req_size = x->prereq;              /* > 0: the request may have gone out */
    if (x->resend_blocked) rc = CURLE_GOT_NOTHING;
    switch (rc) {
      case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_RESOLVE_PROXY: case CURLE_COULDNT_CONNECT:
        sent = 0; retryable = 1; break;
      case CURLE_OPERATION_TIMEDOUT:
        kind = "timeout"; sent = req_size > 0; retryable = !is_post || !sent; break;
      case CURLE_PEER_FAILED_VERIFICATION: case CURLE_SSL_CACERT_BADFILE: case CURLE_SSL_CERTPROBLEM:
      case CURLE_UNSUPPORTED_PROTOCOL: case CURLE_URL_MALFORMAT: case CURLE_SSL_ISSUER_ERROR:
      case CURLE_SSL_CRL_BADFILE: case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        sent = 0; retryable = 0; break;             /* retrying will not change the answer */
      case CURLE_SSL_CONNECT_ERROR:
        sent = req_size > 0; retryable = !is_post || !sent; break;
      case CURLE_OUT_OF_MEMORY:
        sent = req_size > 0; retryable = 0; msg = "out of memory"; break;
      case CURLE_GOT_NOTHING:
        if (x->resend_blocked)
          msg = "the connection closed after the request was sent, before any response (a POST is not resent)";
        sent = 1; retryable = !is_post; break;
      default:
        if (x->oom) { msg = "out of memory while reading the response"; retryable = 0; break; }
        sent = 1; retryable = !is_post; break;
    }
    err = push_error(L, r, kind, status, sent, retryable);
    if (rc == CURLE_OPERATION_TIMEDOUT && capped) lua_pushfstring(L, "deadline exhausted (%s)", msg);
    else lua_pushstring(L, msg);
    lua_setfield(L, err, "message");
    lua_pushinteger(L, (lua_Integer)rc); lua_setfield(L, err, "curl_code");
    set_str(L, err, "request_id", x->request_id);
    return retryable ? SM_RETRY : SM_FAIL;
  }
}
