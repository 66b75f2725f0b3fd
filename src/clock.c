/* clock.c: the monotonic clock the policy measures deadlines with, the wall clock, and sleeping. */
#include <errno.h>
#include <time.h>
#include "clock.h"
#include "interrupt.h"

double sm_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double sm_wall_clock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sm_sleep(double seconds) {
  struct timespec ts;
  if (!(seconds > 0)) return;
  ts.tv_sec = (time_t)seconds;
  ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
  if (ts.tv_nsec > 999999999L) ts.tv_nsec = 999999999L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* core.now() --> monotonic seconds */
int l_core_now(lua_State *L) { lua_pushnumber(L, sm_now()); return 1; }

/* core.time() --> wall clock seconds with fraction */
int l_core_time(lua_State *L) { lua_pushnumber(L, sm_wall_clock()); return 1; }

/* core.sleep(seconds): Ctrl-C cuts it short and reaches the host's handler (interrupt.h) */
int l_core_sleep(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  sm_sigint si;
  luaL_argcheck(L, s == s && s >= 0 && s < 1e9, 1, "expected a number of seconds >= 0");
  sm_sigint_begin(&si);
  sm_sigint_sleep(s);
  sm_sigint_end(&si);
  return 0;
}
