-- A client's transfers on its curl multi handle: who waits for each, routing, and the retry wait.
--
-- Tasks (task.lua) and prefetching loops (pager.lua's `start`, made here) both start transfers on
-- the client's multi handle, and whichever of them performs hands every finished transfer to its
-- waiter: a perform reports transfers by slot, and a slot is reused as soon as it is reported, so a
-- record must reach its waiter at once. A waiter is a task (it has a `_wake` method, which makes it
-- ready on its loop) or a prefetched page's box (a plain table: the record is left in `box.rec` for
-- the page's own perform loop). `client._waiting` maps transfer ids to waiters; only this module
-- reads or writes it.
local core = require "sigmamind.core"

local core_sleep = core.sleep

local _M = {}

-- hands each record { id, outcome, value, delay } to the waiter of its transfer; a transfer nobody
-- waits for any more is cancelled when it waits to be retried (a finished one the core forgot)
local function route(client, recs)
  local waiting = client._waiting
  for i = 1, #recs do
    local r = recs[i]
    local id = r[1]
    local w = waiting and waiting[id]
    if w ~= nil then
      waiting[id] = nil
      local wake = w._wake
      if wake then wake(w, r) else w.rec = r end
    elseif r[2] == "retry" then
      client._c:_cancel(id)
    end
  end
end

-- Drives the client's transfers for at most `timeout` seconds and routes those that finished;
-- returns their records, or nil when none finished.
local function perform(client, timeout)
  local recs = client._c:_perform(timeout)
  if recs then route(client, recs) end
  return recs
end
_M.perform = perform

-- Starts a request on the multi handle for `waiter`: the transfer's id, or nil and the error
-- (kind `invalid`: nothing was sent).
local function start(client, waiter, name, args, params, opts)
  local id, err = client._c:_start(name, args, params, opts)
  if id then
    local waiting = client._waiting
    if waiting == nil then waiting = {} client._waiting = waiting end
    waiting[id] = waiter
  end
  return id, err
end
_M.start = start

-- The one retry loop of a started transfer: `receive(client, id, waiter)` gives the outcome, value
-- and delay of its record once it came, and `backoff(waiter, delay)` waits out a retry's delay
-- before the next attempt is started (the policy is the core's). Returns the value, or nil and err.
local function await(client, id, waiter, receive, backoff)
  while true do
    local outcome, value, delay, meta = receive(client, id, waiter)
    if outcome == "ok" then return value, nil, meta end
    if outcome ~= "retry" then return nil, value end
    backoff(waiter, delay)
    client._waiting[id] = waiter
    client._c:_retry(id)
  end
end
_M.await = await

-- receive for a box: performs until a perform (this one, or a task's) routed the record to it
local function receive_box(client, id, box)
  while true do
    local r = box.rec
    if r then
      box.rec = nil
      return r[2], r[3], r[4], r[5]
    end
    perform(client, 3600)
    if box.rec == nil and client._waiting[id] ~= box then       -- its record went to nobody
      return "lost", core.error{ kind = "network", sent = true, retryable = true, method = "GET",
                                 message = "the prefetched page's transfer was lost" }
    end
  end
end

-- outside a task a retry's backoff blocks, as the blocking path's does
local function backoff_sleep(_, delay) core_sleep(delay) end

-- A list page started before the loop asks for it (pager.lua's `start`): the GET `name` with query
-- `q` is put on the wire now. Returns its waiter, or nil when this transport has no multi handle:
-- waiter() -> finish(ns, name, q, page) | nil, err, retries waited for as the blocking path waits;
-- waiter(true) abandons the page, cancelling its transfer; waiter(true, true), from a finalizer,
-- only forgets it (a finalizer may run inside the client's own calls: no transfer is touched).
function _M.prefetch(client, name, q, finish, ns)
  if client._c._start == nil then return nil end
  local box = {}
  local id, err = start(client, box, name, nil, q)
  if not id then return function() return nil, err end end
  perform(client, 0)
  return function(abandon, lazily)
    if not box then return nil end
    if abandon then
      local r, waiting = box.rec, client._waiting
      if lazily then
        if r == nil then waiting[id] = nil end
      elseif r == nil then                                       -- still in flight
        waiting[id] = nil
        client._c:_cancel(id)
      elseif r[2] == "retry" then                                -- waiting to be tried again
        client._c:_cancel(id)
      end
      box = nil
      return nil
    end
    local page, perr = await(client, id, box, receive_box, backoff_sleep)
    box = nil
    if page == nil then return nil, perr end
    return finish(ns, name, q, page)
  end
end

return _M
