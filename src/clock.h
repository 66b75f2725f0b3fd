/* clock.h: the monotonic clock, the wall clock and sleeping (clock.c). Builds on interrupt.h (core.sleep). */
#ifndef SM_CLOCK_H
#define SM_CLOCK_H

#include "compat.h"

double sm_now(void);                             /* monotonic seconds */
double sm_wall_clock(void);                      /* Unix seconds with fraction */
void sm_sleep(double seconds);
int l_core_now(lua_State *L);
int l_core_time(lua_State *L);
int l_core_sleep(lua_State *L);

#endif
