/* attempt.h: the steps of one attempt that the blocking loop (client.c) and the multi slots (multi.c) share
   (attempt.c): building the request, starting an attempt, and completing it (classify, redact the key,
   on_event, the retry decision), so that both loops judge an attempt the same way. Builds on request.h,
   options.h, transfer.h, policy.h, clock.h and the client's fields (client.h), never its functions. */
#ifndef SM_ATTEMPT_H
#define SM_ATTEMPT_H

#include "policy.h"
#include "request.h"
#include "transfer.h"

/* one operation: the request, its policy (the client's, with the request's own options), its attempts so far,
   and when it started */
typedef struct sm_attempt {
  sm_req r;
  sm_policy policy;
  const char *headers;         /* extra header lines (options.h), pinned with the request's strings, or NULL */
  size_t headers_len;
  int n;                       /* attempts started */
  int capped;                  /* the current attempt's timeout was cut short by the deadline */
  double start;
} sm_attempt;

/* Stack: the client at self, name, args, params, opts (checked: options.h) at self+1..self+4. Builds the
   request and starts the operation's clock, leaving its strings on top of the stack, to be pinned for its life:
   path, body|nil, url, headers|nil. 0 with nil, err (redacted) pushed instead. */
int sm_attempt_open(lua_State *L, int self, sm_attempt *a);
/* the next attempt: on_event "request", then x set up with the policy's timeouts */
CURLcode sm_attempt_begin(lua_State *L, int self, sm_attempt *a, sm_xfer *x);
/* After the attempt ended with rc: pushes the value and its metadata (SM_OK: { status, raw_headers, headers
   (made from raw_headers on first use), request_id, attempts, elapsed, method, path }) or the error (redacted, with attempts and elapsed), emits "response" and
   then "retry" (SM_RETRY, *delay: the wait) or "give_up" (SM_FAIL), and counts the connections and the
   server's clock into the client. */
int sm_attempt_finish(lua_State *L, int self, sm_attempt *a, sm_xfer *x, CURLcode rc, double *delay);

#endif
