/* options.h: a request's own options (options.c), the optional last argument of client:request, client:_start
   and core.prepare: timeouts and retries for this call only, extra headers, and extra_body/extra_query for what
   the endpoint table does not know. Builds on endpoints.h. */
#ifndef SM_OPTIONS_H
#define SM_OPTIONS_H

#include <stddef.h>
#include <curl/curl.h>
#include "endpoints.h"

#define SM_OPT_TIMEOUT         1u
#define SM_OPT_CONNECT_TIMEOUT 2u
#define SM_OPT_DEADLINE        4u
#define SM_OPT_MAX_RETRIES     8u
#define SM_OPT_HEADERS        16u        /* a non-empty headers table */
#define SM_OPT_EXTRA_BODY     32u
#define SM_OPT_EXTRA_QUERY    64u

typedef struct sm_reqopts {
  int table;                             /* the options table's stack index (absolute), 0: none */
  unsigned set;                          /* SM_OPT_* given */
  double timeout, connect_timeout, deadline;
  long max_retries;
} sm_reqopts;

/* Checks the options table at idx (none or nil: no options) for ep and fills o. Raises, blaming argument idx,
   for a name it does not know, a value of the wrong type or range, extra_body on an endpoint without a body,
   and a header it cannot send (X-API-Key, Host, Content-Length, Transfer-Encoding: the client's own; a name
   that is no HTTP token; CR, LF or NUL in a value). */
void sm_reqopts_check(lua_State *L, int idx, const sm_endpoint *ep, sm_reqopts *o);
/* pushes the options table's extra_body or extra_query (name) and returns its index; 0 with nil pushed when
   it was not given */
int sm_reqopts_push(lua_State *L, const sm_reqopts *o, const char *name);
/* Pushes the extra headers as one string, each "Name: value" line ended by a NUL byte ("Name;" for an empty
   value, "Name:" for a header given as false: libcurl then sends none), or nil when there are none. */
void sm_reqopts_push_headers(lua_State *L, const sm_reqopts *o);
/* C only: a new libcurl header list, the base list without the headers the lines replace, then the lines;
   NULL when out of memory. */
struct curl_slist *sm_headers_merge(const struct curl_slist *base, const char *lines, size_t len);
void sm_headers_free(struct curl_slist *list);   /* wipes each line (the base holds the key), then frees */

#endif
