/* validate.h: checking params and path arguments against the endpoint table (validate.c). Builds on
   endpoints.h and crypto.h (base64 fields). */
#ifndef SM_VALIDATE_H
#define SM_VALIDATE_H

#include <stddef.h>
#include "endpoints.h"

/* Each returns 1 when valid; else pushes nothing and fills field/message (message is a Lua string pushed on
   the stack) and returns 0. */
int sm_validate_params(lua_State *L, const sm_endpoint *ep, int params, const char **field);
int sm_validate_arg(lua_State *L, const sm_endpoint *ep, const char *s, size_t len);
int sm_is_e164(const char *s, size_t len);
int sm_utf8_valid(const char *s, size_t len);    /* well-formed UTF-8 (RFC 3629) */

#endif
