/* json.h: the JSON codec (json.c). Builds on nothing of ours. */
#ifndef SM_JSON_H
#define SM_JSON_H

#include <stddef.h>
#include "compat.h"

#define SM_JSON_MAX_DEPTH 1000    /* cjson's encode_max_depth and decode_max_depth */

int sm_json_encode(lua_State *L, int idx);       /* pushes string (1) or nil, msg (0: two values) */
int sm_json_decode(lua_State *L, const char *s, size_t len); /* pushes value (1) or nil, msg (0) */
/* the same; drop_nulls: an object member whose value is null is left out (arrays keep core.null: no holes) */
int sm_json_decode_opt(lua_State *L, const char *s, size_t len, int drop_nulls);
void sm_push_null(lua_State *L);
int l_core_json_encode(lua_State *L);            /* core.json_encode(v) --> s | nil, msg */
int l_core_json_decode(lua_State *L);            /* core.json_decode(s [, opts]) --> value | nil, msg */

#endif
