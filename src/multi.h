/* multi.h: the client's concurrent transfers (multi.c), owned by the client. Builds on client.h and
   attempt.h. */
#ifndef SM_MULTI_H
#define SM_MULTI_H

#include "client.h"

void sm_multi_register(lua_State *L);            /* adds _start/_retry/_perform/_cancel/_pending to the table on top */
void sm_multi_release(sm_client *c);             /* removes every easy handle from the multi, then frees all */

#endif
