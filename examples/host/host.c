/* host.c: a game/app server's main loop, 60 ticks a second, that places and follows phone calls through
   sigmamind without ever stalling: each tick calls client:poll(0), which does whatever network work is ready,
   at most a few milliseconds of it however much is queued, and returns. At the end it prints how the calls
   ended and its worst tick against the frame budget (1/60 s).

   Run it (from the repository's root, against the local sandbox):

     make host                                             # the module, then examples/host/host
     eval "$(bin/sigmamind-sandbox --daemon --port 0)"     # exports the four variables below
     LUA_PATH="$PWD/lua/?.lua;$PWD/lua/?/init.lua;;" LUA_CPATH="$PWD/build/?.so;;" HOST_CALLS=200 examples/host/host
     bin/sigmamind-sandbox stop --prefix "$SIGMAMIND_SANDBOX_PREFIX"

   or `make -C examples/host run`, which does the same. Environment:
     SIGMAMIND_BASE_URL, SIGMAMIND_API_KEY   where the API is and its key (read by sigmamind.new)
     SIGMAMIND_SANDBOX_NUMBER                the caller: a number of the account with an outbound agent
     SIGMAMIND_SANDBOX_AGENT                 the agent
     HOST_CALLS                              how many calls (default 200), to +12137770001 onwards
     LUA_PATH, LUA_CPATH                     must find sigmamind (lua/) and sigmamind.core (build/, after make)
   Exit status: 0 when every call was placed and followed to a final status; 1 when any create or wait failed
   (each failure is printed); 2 when the script could not run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

/* the game's script: spawns one task per call (create, then wait for a final status) and returns the two
   functions the loop needs */
static const char *SCRIPT =
  "local sigmamind = require 'sigmamind'\n"
  "local client = sigmamind.new{}\n"
  "local n = tonumber(os.getenv('HOST_CALLS') or '200')\n"
  "local from, agent = os.getenv('SIGMAMIND_SANDBOX_NUMBER'), os.getenv('SIGMAMIND_SANDBOX_AGENT')\n"
  "local outcome, failures = {}, {}\n"
  "for i = 1, n do\n"
  "  client:spawn(function()\n"
  "    local call, err = client.calls:create{ fromPhoneNumber = from, agentId = agent,\n"
  "      toPhoneNumber = string.format('+1213777%04d', i), dynamicVariables = { player = 'p' .. i } }\n"
  "    if not call then failures[#failures + 1] = 'call ' .. i .. ': create: ' .. tostring(err); return end\n"
  "    local final, werr = client.calls:wait(call.callId, { interval = 0.2, timeout = 120 })\n"
  "    if not final then failures[#failures + 1] = 'call ' .. i .. ': wait: ' .. tostring(werr); return end\n"
  "    outcome[i] = final.status\n"
  "  end)\n"
  "end\n"
  "local function tick() return client:poll(0) end\n"
  "local FINAL = {}\n"
  "for _, s in ipairs(sigmamind.final_statuses) do FINAL[s] = true end\n"
  "-- the summary line and the failures (one string each)\n"
  "local function summary()\n"
  "  local counts, final, names = {}, 0, {}\n"
  "  for i = 1, n do\n"
  "    local s = outcome[i] or 'failed'\n"
  "    if FINAL[s] then final = final + 1 end\n"
  "    counts[s] = (counts[s] or 0) + 1\n"
  "  end\n"
  "  for s, k in pairs(counts) do names[#names + 1] = s .. '=' .. k end\n"
  "  table.sort(names)\n"
  "  client:close()\n"
  "  return string.format('final=%d/%d failed=%d statuses: %s', final, n, #failures, table.concat(names, ' ')),\n"
  "         table.unpack(failures)\n"
  "end\n"
  "return tick, summary\n";

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t) {
  double d = t - now();
  struct timespec ts;
  if (d <= 0) return;
  ts.tv_sec = (time_t)d;
  ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

int main(void) {
  const double period = 1.0 / 60;             /* the frame budget: one tick's share of a second */
  double next, worst = 0, total = 0, start;
  long ticks = 0, over = 0;
  int i, nres, failed;
  lua_State *L = luaL_newstate();
  if (!L) { fprintf(stderr, "host: cannot create a Lua state\n"); return 2; }
  luaL_openlibs(L);
  if (luaL_loadstring(L, SCRIPT) != LUA_OK || lua_pcall(L, 0, 2, 0) != LUA_OK) {
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 2;
  }
  /* stack: 1 tick, 2 summary */
  start = next = now();
  for (;;) {
    double t0 = now(), dt;
    lua_Integer live;
    /* ... the game's own work for this tick would go here ... */
    lua_pushvalue(L, 1);
    if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
      fprintf(stderr, "host: tick: %s\n", lua_tostring(L, -1));
      lua_close(L);
      return 2;
    }
    live = lua_tointeger(L, -1);
    lua_pop(L, 1);
    dt = now() - t0;
    if (dt > worst) worst = dt;
    if (dt > period) over++;
    total += dt;
    ticks++;
    if (live == 0) break;
    next += period;
    if (next < now()) next = now();              /* fell behind: do not try to catch up with a burst */
    sleep_until(next);
  }
  lua_pushvalue(L, 2);
  if (lua_pcall(L, 0, LUA_MULTRET, 0) != LUA_OK) {
    fprintf(stderr, "host: summary: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 2;
  }
  nres = lua_gettop(L) - 2;                      /* the summary line, then one line per failed call */
  printf("%s\n", lua_tostring(L, 3));
  for (i = 4; i < 3 + nres; i++) fprintf(stderr, "host: %s\n", lua_tostring(L, i));
  failed = nres > 1;
  printf("ticks=%ld seconds=%.2f worst_tick_ms=%.3f mean_tick_ms=%.3f frame_budget_ms=%.3f over_budget_ticks=%ld "
         "worst_tick_of_budget=%.0f%%\n", ticks, now() - start, worst * 1e3, total / (double)ticks * 1e3,
         period * 1e3, over, worst / period * 100);
  lua_close(L);
  return failed ? 1 : 0;
}
