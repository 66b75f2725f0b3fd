-- Tasks: coroutines driven by a client's curl multi loop (spawn, poll, run, join, map).

--- Tasks: coroutines driven by a client's curl multi loop. Use them through
-- @{sigmamind.Client:spawn|client:spawn}, @{sigmamind.Client:poll|client:poll},
-- @{sigmamind.Client:run|client:run} and @{sigmamind.map}; this module is what those call.
--
-- Inside a task, a request hands control to the loop instead of blocking, and retry backoff and
-- `calls:wait` pauses wait on loop timers, never by sleeping the process; outside a task nothing
-- changes. Each client has one scheduler, made on its first spawn. These tasks are the loop of
-- scripts and C hosts: inside nginx use `ngx.thread.spawn` instead.
-- @module sigmamind.task
local core = require "sigmamind.core"
local describe = require "sigmamind.describe"
local transfers = require "sigmamind.transfers"

local error, type, setmetatable, getmetatable, pcall, select, pairs =
      error, type, setmetatable, getmetatable, pcall, select, pairs
local string_format, debug_traceback = string.format, debug.traceback
local co_create, co_resume, co_yield, co_running, co_status =
      coroutine.create, coroutine.resume, coroutine.yield, coroutine.running, coroutine.status
local math_min, math_floor = math.min, math.floor
-- LuaJIT (OpenResty) has neither table.pack nor table.unpack
-- luacheck: push ignore 143
local table_unpack = table.unpack or unpack   -- luacheck: compat
local table_pack = table.pack or function(...) return { n = select("#", ...), ... } end
-- luacheck: pop
local now, sleep = core.now, core.sleep
local perform, start, await = transfers.perform, transfers.start, transfers.await

local _M = {}

-- what a task yields to wait on its loop
local WAIT = setmetatable({}, { __name = "sigmamind.task.wait" })

local Task = {}
Task.__index = Task
Task.__name = "sigmamind.task"

----------------------------------------------------------------------------------------------------
-- The scheduler: one per client, made on first spawn. Ready tasks run in a FIFO; transfers belong
-- to the core's multi handle and their waiters to transfers.lua; timers (sleeps, retry backoff) sit
-- in a binary heap ordered by due time.

local function scheduler(client)
  local s = client._sched
  if s == nil then
    s = { client = client, c = client._c, tasks = {}, live = 0,
          queue = {}, qhead = 1, qtail = 0,       -- ready tasks
          running = false,                        -- a pass (run_ready) is under way
          heap = {}, nheap = 0, seq = 0 }         -- timers
    client._sched = s
  end
  return s
end
_M.scheduler = scheduler

local NOTHING = table_pack()

local function enqueue(s, t)
  local q = s.qtail + 1
  s.qtail = q
  s.queue[q] = t
end

-- t runs at the next pass, resumed with the values given
local function make_ready(s, t, ...)
  t.rargs = select("#", ...) == 0 and NOTHING or table_pack(...)
  enqueue(s, t)
end

-- a task's transfer finished (transfers.lua routes the record { id, outcome, value, delay, meta }
-- here): the task runs again, its wait (receive, below) given the outcome, value, delay and meta;
-- the record itself is kept until then (no table made per wake)
Task._wake = function(t, r)
  t.rrec = r
  enqueue(t.sched, t)
end

local function timer_less(a, b) return a.at < b.at or (a.at == b.at and a.seq < b.seq) end

local function add_timer(s, at, t)
  s.seq = s.seq + 1
  local h, i = s.heap, s.nheap + 1
  s.nheap = i
  local e = { at = at, seq = s.seq, task = t }
  while i > 1 do
    local p = math_floor(i / 2)   -- not //: this file runs on LuaJIT too
    if not timer_less(e, h[p]) then break end
    h[i] = h[p]; i = p
  end
  h[i] = e
end

local function pop_timer(s)
  local h, n = s.heap, s.nheap
  local top, last = h[1], h[n]
  h[n] = nil
  n = n - 1
  s.nheap = n
  if n > 0 then
    local i = 1
    while true do
      local l = 2 * i
      if l > n then break end
      if l < n and timer_less(h[l + 1], h[l]) then l = l + 1 end
      if not timer_less(h[l], last) then break end
      h[i] = h[l]; i = l
    end
    h[i] = last
  end
  return top
end

local function fire_timers(s)
  if s.nheap == 0 then return end
  local t = now()
  while s.nheap > 0 and s.heap[1].at <= t do make_ready(s, pop_timer(s).task) end
end

local function finish(s, t, ok, ...)
  if co_status(t.co) ~= "dead" then
    if ok and (...) ~= WAIT then make_ready(s, t) end   -- a plain coroutine.yield: run next pass
    if ok then return end
  end
  s.tasks[t.co] = nil
  s.live = s.live - 1
  t.done = true
  if ok then t.results = table_pack(...)
  else t.failed, t.err, t.traceback = true, (...), debug_traceback(t.co) end
  local joiners = t.joiners
  t.joiners = nil
  for i = 1, #joiners do make_ready(s, joiners[i]) end
end

-- How long one pass may spend resuming tasks, in seconds. A pass stops starting tasks once it is
-- spent and leaves the rest ready for the next pass, so that poll(0) with a thousand tasks just
-- spawned stays inside a host's frame (a task's run until it yields can overrun it a little).
local BUDGET = 0.0015

-- runs the tasks ready now, at least one and then until `stop` (those made ready meanwhile, and
-- those the budget left, wait for the next pass: a pass is bounded). A task may poll its own
-- client (client:poll inside a task): that pass runs inside this one, on the same queue.
local function run_ready(s, stop)
  local last, outer = s.qtail, not s.running
  s.running = true
  while s.qhead <= last do
    local i = s.qhead
    local t = s.queue[i]
    s.queue[i] = nil
    s.qhead = i + 1
    local r = t.rrec
    if r ~= nil then
      t.rrec = nil
      finish(s, t, co_resume(t.co, r[2], r[3], r[4], r[5]))
    else
      local a = t.rargs
      t.rargs = nil
      finish(s, t, co_resume(t.co, table_unpack(a, 1, a.n)))
    end
    if now() >= stop then break end
  end
  if not outer then return end
  s.running = false
  -- drained: the queue starts again at 1, so that its indices stay in the table's array part (only
  -- by the outermost pass: an inner one starting the queue again would send this one, whose `last`
  -- still counts the old indices, reading past its end)
  if s.qhead > s.qtail then s.qhead, s.qtail = 1, 0 end
end

-- nothing can make progress: no ready task, no timer, no transfer
local function stuck(s)
  if s.qhead <= s.qtail or s.nheap > 0 then return false end
  local active, done = s.c:_pending()
  return active + done == 0
end

--- Drive transfers and timers for at most `timeout` seconds (what
-- @{sigmamind.Client:poll|client:poll} calls).
-- @tparam sigmamind.Client client
-- @number timeout seconds
-- @treturn integer the number of live tasks
function _M.poll(client, timeout)
  local s = client._sched
  if s == nil or s.live == 0 then return 0 end
  local c = s.c
  local until_ = now() + timeout
  repeat
    local stop = now() + BUDGET                            -- for the tasks of this pass
    fire_timers(s)
    run_ready(s, stop)
    if s.live == 0 then break end
    local wait = 0
    if s.qhead > s.qtail then
      local left = until_ - now()
      if s.nheap > 0 then left = math_min(left, s.heap[1].at - now()) end
      if left > 0 then wait = left end
    end
    local recs = perform(client, wait)
    if not recs and wait > 0 then
      local active = c:_pending()
      if active == 0 then
        if stuck(s) then break end
        sleep(wait)                                        -- only timers are pending
      end
    end
    fire_timers(s)
    run_ready(s, stop)
  until s.live == 0 or now() >= until_
  return s.live
end

--- Poll until every task of `client` is done (what @{sigmamind.Client:run|client:run} calls).
-- @tparam sigmamind.Client client
-- @raise when the tasks left wait for each other and nothing else
function _M.run(client)
  local s = client._sched
  while s ~= nil and s.live > 0 do
    _M.poll(client, 3600)
    if s.live > 0 and stuck(s) then
      error(string_format("sigmamind: run: %d task(s) wait for each other and nothing else", s.live), 3)
    end
  end
end

-- the task of this scheduler that is running now, or nil
local function current(s)
  local co, main = co_running()
  if main then return nil end
  return s.tasks[co]
end
_M.current = current

-- how many tasks of `client` are alive (the one running now among them)
function _M.live(client)
  local s = client._sched
  return s ~= nil and s.live or 0
end

--- Make a task of `fn(...)`; it first runs at the next poll or join (what
-- @{sigmamind.Client:spawn|client:spawn} calls).
-- @tparam sigmamind.Client client
-- @tparam function fn
-- @param ... its arguments
-- @treturn Task
-- @raise when `fn` is not a function
function _M.spawn(client, fn, ...)
  if type(fn) ~= "function" then error("sigmamind: spawn: expected a function, got " .. type(fn), 3) end
  local s = scheduler(client)
  local t = setmetatable({ co = co_create(fn), sched = s, client = client, joiners = {}, done = false }, Task)
  s.tasks[t.co] = t
  s.live = s.live + 1
  make_ready(s, t, ...)
  return t
end

----------------------------------------------------------------------------------------------------
-- What the resource functions use inside a task.
-- @local

function _M.sleep(s, seconds)
  -- a NaN due time would sit atop the heap for ever, never due, and hold every later timer back
  if type(seconds) ~= "number" or seconds ~= seconds or seconds < 0 then seconds = 0 end
  add_timer(s, now() + seconds, current(s))
  co_yield(WAIT)
end

-- what a task's transfer waits with: its record comes as the values it is resumed with (Task._wake)
local function receive(_, _, _)
  return co_yield(WAIT)
end

-- a retry's backoff: a loop timer
local function backoff(t, delay)
  return _M.sleep(t.sched, delay)
end

-- one request, yielding to the loop; retries wait on a loop timer; the policy is the core's
function _M.request(s, c, name, args, params, opts)
  if c._start == nil then return c:request(name, args, params, opts) end   -- a transport with no multi
  local t = current(s)
  local client = s.client
  local id, err = start(client, t, name, args, params, opts)
  if not id then return nil, err end
  return await(client, id, t, receive, backoff)
end

----------------------------------------------------------------------------------------------------
-- Task objects.
-- @type Task

--- Wait for the task and give its values. From inside another task of the same client it yields
-- until the task is done; from plain code it drives the loop itself. Joining a finished task again
-- gives the same values.
-- @return the values `fn` returned, or `nil, err` when it raised `err`
-- @raise when a task joins itself, or the task waits for something no task or transfer will ever do
function Task:join()
  if getmetatable(self) ~= Task then error("sigmamind: call it as task:join()", 2) end
  local s = self.sched
  if not self.done then
    local me = current(s)
    if me == self then error("sigmamind: a task cannot join itself", 2) end
    if me then
      local joiners = self.joiners
      joiners[#joiners + 1] = me
      repeat co_yield(WAIT) until self.done
    else
      while not self.done do
        _M.poll(self.client, 3600)
        if not self.done and stuck(s) then
          error("sigmamind: join: the task waits for something no task or transfer will ever do", 2)
        end
      end
    end
  end
  if self.failed then return nil, self.err end
  return table_unpack(self.results, 1, self.results.n)
end

--- The task's state.
-- @treturn string `"running"` (not yet finished), `"done"` or `"failed"` (it raised)
function Task:status()
  if self.done then return self.failed and "failed" or "done" end
  return "running"
end

Task.__tostring = function(self) return "sigmamind.task(" .. self:status() .. ")" end

--- map belongs to the module, not to Task.
-- @section end

--- Map `fn` over `list` with `concurrency` tasks of `client` (as @{sigmamind.map}, which it is).
-- @function map
-- @tparam sigmamind.Client client
-- @tparam table list an array
-- @tparam function fn called as `fn(list[i], i)`
-- @tparam[opt] table opts `concurrency` (default 16)
-- @treturn table `results[i] = { value }` or `{ nil, err }`, in the order of `list`; an error
-- raised by `fn` is captured as `err`
-- @raise on misuse
function _M.map(client, list, fn, opts)
  if type(list) ~= "table" then error("sigmamind.map: expected a list, got " .. type(list), 2) end
  if type(fn) ~= "function" then error("sigmamind.map: expected a function, got " .. type(fn), 2) end
  if opts ~= nil and type(opts) ~= "table" then
    error("sigmamind.map: expected an options table, got " .. describe.value(opts), 2)
  end
  if opts ~= nil then
    for k in pairs(opts) do      -- a misspelt option would silently run at the default concurrency
      if k ~= "concurrency" then
        error("sigmamind.map: unknown option " .. describe.value(k) .. " (the one option is concurrency)", 2)
      end
    end
  end
  local conc = opts and opts.concurrency or 16
  if type(conc) ~= "number" or conc < 1 or conc % 1 ~= 0 then
    error("sigmamind.map: concurrency: expected an integer >= 1, got " .. describe.value(conc), 2)
  end
  local n, nexti, results = #list, 0, {}
  local function worker()
    while nexti < n do
      nexti = nexti + 1
      local i = nexti
      local ok, v, err = pcall(fn, list[i], i)
      if not ok then results[i] = { nil, v }
      elseif v == nil then results[i] = { nil, err }
      else results[i] = { v } end
    end
  end
  local workers = {}
  for w = 1, math_min(conc, n) do workers[w] = _M.spawn(client, worker) end
  for w = 1, #workers do
    local ok, err = workers[w]:join()
    if ok == nil and err ~= nil then error(err, 0) end
  end
  return results
end

_M.WAIT = WAIT

return _M
