/* policy.h: the attempt policy without libcurl (policy.c): how a reply or a transport failure becomes a value
   or a typed error, whether to retry, after how long, and how much of the deadline is left. Shared by both C
   loops (through attempt.h) and, through core.classify, by transports written in Lua. Builds on request.h
   (the request's method and path), json.h, error.h and clock.h. */
#ifndef SM_POLICY_H
#define SM_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include "request.h"

/* a client's settings that decide the attempts */
typedef struct sm_policy {
  double timeout, connect_timeout, deadline;
  long max_retries;
} sm_policy;

enum sm_outcome { SM_OK, SM_FAIL, SM_RETRY };

/* an HTTP reply */
typedef struct sm_reply {
  long status;
  const char *body; size_t len;
  const char *request_id, *retry_after;   /* header values, or NULL */
  int keep_nulls;                         /* a 2xx body's JSON nulls as core.null, not as absent members */
} sm_reply;

/* no HTTP reply */
typedef struct sm_failure {
  long status;
  const char *kind;            /* "network", "timeout" or "interrupted" */
  const char *message;
  int sent;                    /* the request may have reached the server */
  int fatal;                   /* retrying cannot help */
  int capped;                  /* the attempt's timeout was cut short by the deadline */
  const char *request_id;
} sm_failure;

/* Each classifier pushes the value (SM_OK) or an error table (SM_FAIL / SM_RETRY). */
int sm_classify_http(lua_State *L, const sm_req *r, const sm_reply *reply, double *retry_after);
int sm_classify_too_large(lua_State *L, const sm_req *r, long status, size_t max_bytes, const char *request_id);
int sm_classify_failure(lua_State *L, const sm_req *r, const sm_failure *f);
double sm_parse_retry_after(const char *v);

/* The attempt's timeout and connect timeout, elapsed seconds into the operation; *capped: cut short by the
   deadline. */
double sm_attempt_timeout(const sm_policy *p, double elapsed, double *connect_timeout, int *capped);
/* the wait before the next attempt, or -1 to give up (no attempts left, or the deadline comes first);
   retry_after < 0: none given (backoff with jitter u in [0, 1)) */
double sm_next_delay(const sm_policy *p, int attempt, double retry_after, double u, double elapsed);
double sm_jitter(uint64_t *state);               /* u in [0, 1) from a xorshift state (never 0) */
int l_core_classify(lua_State *L);               /* core.classify{ ... } */

#endif
