/* validate.h: checking params and path arguments against the endpoint table (validate.c). Builds on
   endpoints.h and crypto.h (base64 fields). */
#ifndef SM_VALIDATE_H
#define SM_VALIDATE_H

#include <stddef.h>
#include "endpoints.h"

/* Each returns 1 when valid; else fills field and pushes the message (a Lua string) and returns 0. Params
   must use the endpoint's own names (or a field's alias): any other is refused, with a suggestion. */
int sm_validate_params(lua_State *L, const sm_endpoint *ep, int params, const char **field);
/* extra_body/extra_query (the table at t, named root in messages): any name goes, but no string in it, name or
   value (at any depth when body), may carry a NUL byte or invalid UTF-8 */
int sm_validate_extra(lua_State *L, const sm_endpoint *ep, int t, const char *root, int body, const char **field);
int sm_validate_arg(lua_State *L, const sm_endpoint *ep, const char *s, size_t len);
int sm_is_e164(const char *s, size_t len);
int sm_utf8_valid(const char *s, size_t len);    /* well-formed UTF-8 (RFC 3629) */

#endif
