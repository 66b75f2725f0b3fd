/* transfer.c: one attempt of one request on one easy handle: set it up, let libcurl run it (the caller does:
   blocking or in a multi), then map the result onto the policy: a value, or an error and whether to retry.
   libcurl's callbacks only touch C memory owned by the sm_xfer; they never call Lua. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "transfer.h"
#include "clock.h"
#include "httpdate.h"
#include "interrupt.h"
#include "mime.h"
#include "options.h"
#include "policy.h"

static void buf_free(sm_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

#define SM_BODY_RESERVE ((size_t)1024 * 1024)

size_t sm_xfer_on_body(char *ptr, size_t size, size_t n, void *ud) {
  sm_xfer *x = (sm_xfer *)ud;
  size_t len = size * n;
  if (len == 0) return 0;                  /* an empty body: libcurl may call once with nothing (data NULL) */
  if (len > x->max_bytes - x->body.len || x->body.len > x->max_bytes) { x->too_large = 1; return 0; }
  if (x->body.len + len > x->body.cap) {
    size_t cap = x->body.cap ? x->body.cap : 4096;
    char *p;
    curl_off_t cl = -1;
    /* the first bytes of a body with a Content-Length: room for all of it at once, not a copy per doubling
       (up to SM_BODY_RESERVE: a lying header costs at most that, and past it doubling copies little) */
    if (x->body.len == 0 && curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK &&
        cl > 0 && (size_t)cl <= SM_BODY_RESERVE && (size_t)cl + 1 > cap)
      cap = (size_t)cl + 1;
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

#define SM_HEADERS_MAX ((size_t)64 * 1024)

/* keeps a header line as received, for a success's metadata (attempt.c): C memory, and what fits in 64 KB */
static void keep_header(sm_xfer *x, const char *h, size_t len) {
  if (len <= 2 || len > SM_HEADERS_MAX - x->headers.len) return;      /* the blank line ending the headers */
  if (x->headers.len + len > x->headers.cap) {
    size_t cap = x->headers.cap ? x->headers.cap : 512;
    char *grown;
    while (cap < x->headers.len + len) cap *= 2;
    if (!(grown = (char *)realloc(x->headers.data, cap))) return;
    x->headers.data = grown;
    x->headers.cap = cap;
  }
  memcpy(x->headers.data + x->headers.len, h, len);
  x->headers.len += len;
}

size_t sm_xfer_on_header(char *h, size_t size, size_t n, void *ud) {
  sm_xfer *x = (sm_xfer *)ud;
  size_t len = size * n;
  if (len > 5 && memcmp(h, "HTTP/", 5) == 0) {      /* a new response (after a 1xx, say): forget the last */
    const char *sp = memchr(h, ' ', len), *end = h + len;
    x->headers.len = 0;
    x->request_id[0] = x->retry_after[0] = '\0';
    x->date_seen = x->date_void = 0;
    x->header_status = 0;                          /* the three digits after the first space, within the line
                                                      (strtol would skip "\r\n" and read past it) */
    if (sp && end - sp > 3 && isdigit((unsigned char)sp[1]) && isdigit((unsigned char)sp[2]) &&
        isdigit((unsigned char)sp[3]))
      x->header_status = (sp[1] - '0') * 100L + (sp[2] - '0') * 10L + (sp[3] - '0');
    return len;
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
  } else if (header_is(h, len, "date", 4)) {
    char v[64] = { 0 };
    double t;
    header_value(v, sizeof v, h + 5, len - 5);
    /* the server's clock, for reconciliation: only from a single Date, an IMF-fixdate (GMT) */
    if (++x->date_seen > 1 || (t = sm_imf_fixdate(v, strlen(v))) < 0) {
      x->date_void = 1;
    } else {
      x->date_offset = t - sm_wall_clock();
    }
  } else if (header_is(h, len, "age", 3)) {
    x->date_void = 1;                            /* a cache answered: its Date is the origin's, from then */
  }
  keep_header(x, h, len);
  return len;
}

/* Called right before a request goes out on a connection. libcurl resends a request by itself when a reused
   connection dies before any response byte (Curl_retry_request); for a POST that could create a second call,
   so the second send is refused and the attempt reported as sent and not retryable. */
int sm_xfer_on_prereq(void *ud, char *primary_ip, char *local_ip, int primary_port, int local_port) {
  sm_xfer *x = (sm_xfer *)ud;
  (void)primary_ip; (void)local_ip; (void)primary_port; (void)local_port;
  if (x->prereq++ > 0 && x->no_resend) { x->resend_blocked = 1; return CURL_PREREQFUNC_ABORT; }
  return CURL_PREREQFUNC_OK;
}

/* libcurl calls it while a transfer runs, idle or not (its blocking loop wakes at least once a second, at
   once when a signal cut its poll short): a blocking transfer stops here when SIGINT came */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  sm_xfer *x = (sm_xfer *)ud;
  (void)dltotal; (void)dlnow; (void)ultotal; (void)ulnow;
  if (x->interruptible && sm_sigint_pending()) { x->interrupted = 1; return 1; }
  return 0;
}

CURLcode sm_xfer_init(sm_xfer *x, CURLSH *share, struct curl_slist *headers, const char *ca_file,
                      const char *proxy, const char *noproxy) {
  CURLcode rc = CURLE_OK;
  CURL *e = x->easy;
  x->client_headers = headers;
  strcpy(x->form_ct_text, "Content-Type: multipart/form-data");
  x->form_ct.data = x->form_ct_text;
  x->form_ct.next = headers;
#define SET(opt, v) do { if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, v); } while (0)
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_FOLLOWLOCATION, 0L);
  SET(CURLOPT_SSL_VERIFYPEER, 1L);
  SET(CURLOPT_SSL_VERIFYHOST, 2L);
  SET(CURLOPT_ERRORBUFFER, x->errbuf);
  SET(CURLOPT_WRITEFUNCTION, sm_xfer_on_body);
  SET(CURLOPT_WRITEDATA, x);
  SET(CURLOPT_HEADERFUNCTION, sm_xfer_on_header);
  SET(CURLOPT_HEADERDATA, x);
  SET(CURLOPT_HTTPHEADER, headers);
  SET(CURLOPT_PREREQFUNCTION, sm_xfer_on_prereq);
  SET(CURLOPT_PREREQDATA, x);
  SET(CURLOPT_XFERINFOFUNCTION, on_progress);
  SET(CURLOPT_XFERINFODATA, x);
  SET(CURLOPT_NOPROGRESS, 0L);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  SET(CURLOPT_TCP_NODELAY, 1L);
  if (share) SET(CURLOPT_SHARE, share);
  if (ca_file) SET(CURLOPT_CAINFO, ca_file);
  if (proxy) SET(CURLOPT_PROXY, proxy);
  if (noproxy) SET(CURLOPT_NOPROXY, noproxy);
#undef SET
  return rc;
}

/* The form goes once its attempt is over (curl_mime_free unbinds it from the handle), and the handle's own
   headers come back for the requests after it. */
static void form_free(sm_xfer *x) {
  if (!x->form) return;
  curl_mime_free(x->form);
  x->form = NULL;
  curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->client_headers);
}

void sm_xfer_free(sm_xfer *x) {
  form_free(x);
  if (x->easy) { curl_easy_cleanup(x->easy); x->easy = NULL; }
  if (x->uh) { curl_url_cleanup(x->uh); x->uh = NULL; }
  free(x->uh_url);
  x->uh_url = NULL;
  sm_headers_free(x->own_headers);
  x->own_headers = NULL;
  buf_free(&x->headers);
  buf_free(&x->body);
}

static long to_ms(double s) {
  double ms = ceil(s * 1000.0);
  if (ms < 1) return 1;                /* 0 would mean "no timeout" to libcurl */
  if (ms > 86400000.0) return 86400000L;
  return (long)ms;
}

/* The URL as libcurl would parse it from the string (its own flags for CURLOPT_URL), kept parsed while requests
   go to the same URL: libcurl takes the parsed URL (a copy of it) instead of parsing the string again, which is
   most of what it spends on a request's URL. The string is set as well (libcurl's record of the URL, its
   CURLINFO_EFFECTIVE_URL). NULL when it cannot be parsed: then libcurl parses the string and reports why. */
static CURLU *parsed_url(sm_xfer *x, const char *url) {
  size_t len;
  if (x->uh_url && strcmp(x->uh_url, url) == 0) return x->uh;
  free(x->uh_url);
  x->uh_url = NULL;
  if (!x->uh && !(x->uh = curl_url())) return NULL;
  if (curl_url_set(x->uh, CURLUPART_URL, url, CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
    return NULL;
  len = strlen(url) + 1;
  if (!(x->uh_url = (char *)malloc(len))) return NULL;
  memcpy(x->uh_url, url, len);
  return x->uh;
}

CURLcode sm_xfer_setup(sm_xfer *x, const sm_req *r, double timeout, double connect_timeout) {
  CURLcode rc = CURLE_OK;
  CURL *e = x->easy;
  const char *m = r->ep->method;
  x->body.len = x->headers.len = 0;
  x->too_large = x->oom = x->prereq = x->resend_blocked = x->date_seen = x->date_void = x->interrupted = 0;
  x->no_resend = strcmp(m, "POST") == 0;
  x->header_status = 0;
  x->request_id[0] = x->retry_after[0] = x->errbuf[0] = '\0';
  form_free(x);                                /* one an attempt set up and never ran */
#define SET(opt, v) do { if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, v); } while (0)
  SET(CURLOPT_URL, r->url);
  SET(CURLOPT_CURLU, parsed_url(x, r->url));
  if (r->form) {
    /* libcurl's boundary goes on the first Content-Type header, so the form's comes before the JSON one */
    if (rc == CURLE_OK && !(x->form = sm_mime_build(e, r->body, r->body_len))) rc = CURLE_OUT_OF_MEMORY;
    SET(CURLOPT_MIMEPOST, x->form);
    x->form_ct.next = x->client_headers;      /* an attempt's own headers replace these (attempt.c) */
    SET(CURLOPT_HTTPHEADER, &x->form_ct);
  } else if (r->body) {
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDS, r->body);          /* pinned on the Lua stack for the whole request */
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
  } else {
    SET(CURLOPT_HTTPGET, 1L);
  }
  SET(CURLOPT_CUSTOMREQUEST, (strcmp(m, "GET") == 0 || strcmp(m, "POST") == 0) ? NULL : m);
  SET(CURLOPT_TIMEOUT_MS, to_ms(timeout));
  SET(CURLOPT_CONNECTTIMEOUT_MS, to_ms(connect_timeout));
  SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_bytes);
#undef SET
  return rc;
}

/* Maps libcurl's result onto the shared policy (policy.c), which a Lua transport reaches through
   core.classify: the same kinds, retry rules and messages whatever carried the request. */
static int classify(lua_State *L, sm_xfer *x, const sm_req *r, CURLcode rc, int capped, double *retry_after) {
  long status = 0;
  const char *kind = "network", *msg;
  int sent = 1, fatal = 0, outcome;
  sm_failure f;
  *retry_after = -1;
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
  if (rc == CURLE_OK) {
    sm_reply reply;
    reply.status = status;
    reply.body = x->body.data;
    reply.len = x->body.len;
    reply.request_id = x->request_id;
    reply.retry_after = x->retry_after;
    reply.keep_nulls = x->keep_nulls;
    return sm_classify_http(L, r, &reply, retry_after);
  }
  if (x->interrupted) {              /* Ctrl-C: not retried; a request that may have gone out says so */
    f.status = x->header_status;     /* this attempt's, if an answer had begun: the handle's may be older */
    f.kind = "interrupted";
    f.sent = x->prereq > 0;
    f.message = f.sent ? "interrupted (SIGINT) after the request went out: it may have reached the server"
                       : "interrupted (SIGINT) before the request went out";
    f.fatal = 1;
    f.capped = 0;
    f.request_id = x->request_id;
    return sm_classify_failure(L, r, &f);
  }
  if (x->too_large || rc == CURLE_FILESIZE_EXCEEDED)
    return sm_classify_too_large(L, r, status, x->max_bytes, x->request_id);

  msg = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
  if (x->resend_blocked) rc = CURLE_GOT_NOTHING;
  /* x->prereq > 0: the request may have gone out. Then no failure means "never sent", not even a refused connect:
     libcurl resends by itself on a new connection when a reused one dies before any answer, and a server that
     read the request and went down fails that reconnect. */
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_RESOLVE_PROXY: case CURLE_COULDNT_CONNECT:
      sent = x->prereq > 0;
      if (sent && x->no_resend)
        msg = "the connection closed after the request was sent, before any response, and the reconnect failed "
              "(a POST is not resent)";
      break;
    case CURLE_OPERATION_TIMEDOUT:
      kind = "timeout"; sent = x->prereq > 0; break;
    case CURLE_PEER_FAILED_VERIFICATION: case CURLE_SSL_CACERT_BADFILE: case CURLE_SSL_CERTPROBLEM:
    case CURLE_UNSUPPORTED_PROTOCOL: case CURLE_URL_MALFORMAT: case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE: case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      sent = x->prereq > 0; fatal = 1; break;  /* retrying will not change the answer */
    case CURLE_SSL_CONNECT_ERROR:
      sent = x->prereq > 0; break;
    case CURLE_OUT_OF_MEMORY:
      sent = x->prereq > 0; fatal = 1; msg = "out of memory"; break;
    case CURLE_GOT_NOTHING:
      if (x->resend_blocked)
        msg = "the connection closed after the request was sent, before any response (a POST is not resent)";
      break;
    default:
      if (x->oom) { msg = "out of memory while reading the response"; fatal = 1; }
      break;
  }
  f.status = status;
  f.kind = kind;
  f.message = msg;
  f.sent = sent;
  f.fatal = fatal;
  f.capped = capped && rc == CURLE_OPERATION_TIMEDOUT;
  f.request_id = x->request_id;
  outcome = sm_classify_failure(L, r, &f);
  lua_pushinteger(L, (lua_Integer)rc); lua_setfield(L, -2, "curl_code");
  return outcome;
}

/* The body buffer is kept for the next request on the handle (no allocation per request) while it is no larger
   than a page of 100 calls (100-200 KB): paging reuses one buffer, and glibc neither consolidates its heap nor
   maps and unmaps memory for every page. One that a larger response grew is given back once read, so that a
   client with many transfer slots holds at most 256 KB a slot, not each slot's largest response ever seen. */
#define SM_BODY_KEEP ((size_t)256 * 1024)

int sm_xfer_classify(lua_State *L, sm_xfer *x, const sm_req *r, CURLcode rc, int capped, double *retry_after) {
  int outcome = classify(L, x, r, rc, capped, retry_after);
  /* libcurl sent it twice (a kept-alive connection died before any answer): a 404 to a resent
     DELETE means the first send deleted it (init.lua) */
  if (outcome != SM_OK && x->prereq > 1 && !x->resend_blocked) {
    lua_pushboolean(L, 1); lua_setfield(L, -2, "resent");
  }
  if (x->body.cap > SM_BODY_KEEP) buf_free(&x->body);
  form_free(x);
  return outcome;
}
