/* encode.h: percent-encoding, query strings and masked paths (encode.c). Builds on endpoints.h. */
#ifndef SM_ENCODE_H
#define SM_ENCODE_H

#include <stddef.h>
#include "endpoints.h"

void sm_add_escaped(luaL_Buffer *b, const char *s, size_t len);
/* Pushes "?k=v&..." for the params table ("" when none). Returns 1, or 0 with a message pushed and the
   offending key in *field. */
int sm_push_query(lua_State *L, const sm_endpoint *ep, int params, const char **field);
/* Pushes a copy of an encoded path with E.164 numbers masked (+1415***4444), for on_event. */
void sm_push_masked_path(lua_State *L, const char *path, size_t len);
int l_core_mask_path(lua_State *L);             /* core.mask_path(path) */

#endif
