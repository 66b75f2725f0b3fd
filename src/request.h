/* request.h: building one endpoint call from (name, args, params): the checks that raise for misuse, then
   validation, the path, the query or JSON body, and the URL (request.c). Builds on endpoints.h, validate.h,
   encode.h, json.h and error.h. */
#ifndef SM_REQUEST_H
#define SM_REQUEST_H

#include <stddef.h>
#include "endpoints.h"

/* the request as built: strings pinned on the Lua stack (or in a table) by the caller */
typedef struct sm_req {
  const sm_endpoint *ep;
  int extra_body, extra_query;         /* in: stack indices of a request's extra tables (options.h), 0: none */
  const char *url;
  const char *path; size_t path_len;
  const char *body; size_t body_len;   /* NULL for GET/DELETE */
  int form;                            /* body: a form's parts (mime.c), sent as multipart/form-data */
} sm_req;

/* checks the arguments (self, name, args, params) at 1..4 of client:request and client:_start: raises for
   misuse; returns the endpoint */
const sm_endpoint *sm_request_check(lua_State *L);
/* For r->ep: validates and pushes [path, body|nil] (and, with base, the URL: base .. path .. query) and fills
   r; 0 with an invalid error pushed instead. A field's alias is sent under its name; r->extra_body is merged
   into the body as given, r->extra_query appended to the query (their strings checked, their names not). */
int sm_request_build(lua_State *L, sm_req *r, int args, int params, const char *base, size_t blen);
int l_core_prepare(lua_State *L);                /* core.prepare(name, args, params [, opts]) */
int l_core_validate(lua_State *L);               /* core.validate(name, params [, args [, opts]]) */

#endif
