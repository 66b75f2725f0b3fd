/* error.h: the typed error table and its metatable (error.c). Builds on nothing of ours. */
#ifndef SM_ERROR_H
#define SM_ERROR_H

#include "compat.h"

#define SM_ERROR_MT       "sigmamind.error"

void sm_error_init(lua_State *L);                /* creates the error metatable */
void sm_error_setmeta(lua_State *L, int idx);    /* gives the table at idx the error metatable */
const char *sm_reason_phrase(long status);
/* Pushes an `invalid` error: method/path of the request, field and message (message at stack top, popped). */
void sm_push_invalid(lua_State *L, const char *method, const char *path, const char *field);
int l_core_error(lua_State *L);                  /* core.error(fields) --> err */
int l_core_is_error(lua_State *L);               /* core.is_error(v) */

#endif
