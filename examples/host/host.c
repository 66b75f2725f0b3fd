/* host.c: a game/app server's main loop, 60 ticks a second, that places and follows phone calls through
   sigmamind without ever stalling: each tick calls client:poll(0), which does whatever network work is ready
   and returns at once. Prints the worst tick and how the calls ended.

   Environment: SIGMAMIND_BASE_URL, SIGMAMIND_API_KEY (read by sigmamind.new), SIGMAMIND_SANDBOX_NUMBER and
   SIGMAMIND_SANDBOX_AGENT (the caller and agent), HOST_CALLS (default 200); LUA_PATH/LUA_CPATH must find the
   module (`make test` sets them). */
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
  "local outcome = {}\n"
  "for i = 1, n do\n"
  "  client:spawn(function()\n"
  "    local call, err = client.calls:create{ fromPhoneNumber = from, agentId = agent,\n"
  "      toPhoneNumber = string.format('+1213777%04d', i), dynamicVariables = { player = 'p' .. i } }\n"
  "    if not call then outcome[i] = 'create failed: ' .. tostring(err); return end\n"
  "    local final, werr = client.calls:wait(call.callId, { interval = 0.2, timeout = 120 })\n"
  "    outcome[i] = final and final.status or ('wait failed: ' .. tostring(werr))\n"
  "  end)\n"
  "end\n"
  "local function tick() return client:poll(0) end\n"
  "local function summary()\n"
  "  local counts, final, names = {}, 0, {}\n"
  "  for i = 1, n do\n"
  "    local s = outcome[i] or 'unfinished'\n"
  "    if sigmamind.final_statuses[1] == s or s == 'not_connected' or s == 'error' then final = final + 1 end\n"
  "    counts[s] = (counts[s] or 0) + 1\n"
  "  end\n"
  "  for s, k in pairs(counts) do names[#names + 1] = s .. '=' .. k end\n"
  "  table.sort(names)\n"
  "  client:close()\n"
  "  return string.format('final=%d/%d statuses: %s', final, n, table.concat(names, ' '))\n"
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
  const double period = 1.0 / 60;
  double next, worst = 0, total = 0, start;
  long ticks = 0;
  lua_State *L = luaL_newstate();
  if (!L) { fprintf(stderr, "host: cannot create a Lua state\n"); return 1; }
  luaL_openlibs(L);
  if (luaL_loadstring(L, SCRIPT) != LUA_OK || lua_pcall(L, 0, 2, 0) != LUA_OK) {
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
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
      return 1;
    }
    live = lua_tointeger(L, -1);
    lua_pop(L, 1);
    dt = now() - t0;
    if (dt > worst) worst = dt;
    total += dt;
    ticks++;
    if (live == 0) break;
    next += period;
    if (next < now()) next = now();              /* fell behind: do not try to catch up with a burst */
    sleep_until(next);
  }
  lua_pushvalue(L, 2);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "host: summary: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
  }
  printf("%s\n", lua_tostring(L, -1));
  printf("ticks=%ld seconds=%.2f worst_tick_ms=%.3f mean_tick_ms=%.3f\n", ticks, now() - start, worst * 1e3,
         total / (double)ticks * 1e3);
  lua_close(L);
  return 0;
}
