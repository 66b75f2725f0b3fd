/* transfer.h: one attempt over one libcurl easy handle (transfer.c): its one-time options, the per-attempt
   setup, libcurl's callbacks (C memory only, never Lua) and the mapping of the result onto the policy. The
   caller performs it (blocking or in a multi). Builds on policy.h, httpdate.h, interrupt.h, mime.h and
   options.h. */
#ifndef SM_TRANSFER_H
#define SM_TRANSFER_H

#include <stddef.h>
#include <curl/curl.h>
#include "compat.h"
#include "request.h"

typedef struct sm_buf { char *data; size_t len, cap; } sm_buf;

typedef struct sm_xfer {
  CURL *easy;
  sm_buf body;                 /* response body, reused across attempts and requests */
  sm_buf headers;              /* the last response's header lines as received (up to 64 KB) */
  size_t max_bytes;            /* max_response_bytes */
  long header_status;          /* status from the last status line seen by the header callback */
  int too_large, oom;
  int no_resend;               /* this attempt must not be resent by libcurl's own reconnect logic (POST) */
  int prereq;                  /* times a request was about to go out on a connection in this attempt */
  int resend_blocked;          /* libcurl wanted to resend on a fresh connection and we refused */
  char request_id[128];
  char retry_after[64];
  char errbuf[CURL_ERROR_SIZE];
  int interruptible;           /* a blocking transfer: SIGINT (interrupt.h) aborts it */
  int interrupted;             /* this attempt was aborted so */
  int keep_nulls;              /* a 2xx body's JSON nulls decode as core.null, not as absent members */
  struct curl_slist *own_headers;   /* this attempt's header list (options.h), when it has extra headers */
  int date_seen, date_void;    /* Date headers seen in this response; 1: no clock from it (two Dates, an
                                  Age, which says a cache answered, or a Date that is no IMF-fixdate) */
  double date_offset;          /* with one Date and no void: its time minus this host's wall clock when it
                                  came, seconds (Date counts whole seconds: the server was up to 1 s ahead) */
  struct curl_slist *client_headers;  /* the client's headers, as sm_xfer_init set them */
  curl_mime *form;             /* a multipart attempt's form (mime.c), freed once the attempt is over */
  struct curl_slist form_ct;   /* its Content-Type, ahead of the other headers: libcurl's form
                                  takes the first one */
  char form_ct_text[40];
  CURLU *uh;                   /* the URL parsed, handed to libcurl (CURLOPT_CURLU) so that it does not parse the
                                  same URL again for every request; NULL until the first */
  char *uh_url;                /* the URL it holds (malloc'd), or NULL when it holds none */
} sm_xfer;

/* one-time settings of an easy handle (callbacks, TLS, headers, share); returns a CURLcode */
CURLcode sm_xfer_init(sm_xfer *x, CURLSH *share, struct curl_slist *headers, const char *ca_file,
                      const char *proxy, const char *noproxy);
void sm_xfer_free(sm_xfer *x);
/* per attempt: method, URL, body, and the timeouts the policy gave (seconds) */
CURLcode sm_xfer_setup(sm_xfer *x, const sm_req *r, double timeout, double connect_timeout);
/* After the attempt finished with rc: pushes the value (SM_OK) or an error table (SM_FAIL / SM_RETRY);
   *retry_after: the Retry-After asked for, or -1 */
int sm_xfer_classify(lua_State *L, sm_xfer *x, const sm_req *r, CURLcode rc, int capped, double *retry_after);

/* libcurl's callbacks (ud: the sm_xfer), named here for the response fuzzer, which plays libcurl's side */
size_t sm_xfer_on_body(char *ptr, size_t size, size_t n, void *ud);
size_t sm_xfer_on_header(char *h, size_t size, size_t n, void *ud);
int sm_xfer_on_prereq(void *ud, char *primary_ip, char *local_ip, int primary_port, int local_port);

#endif
