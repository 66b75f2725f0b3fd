-- Pagination over SigmaMind's page-numbered lists: lazy, bounded iterators holding one page.

--- Pagination: the iterators behind every namespace's `each` and `pages` (such as
-- @{sigmamind.calls:each}). A query's `page` (default 0) and `size` (default 100, the API's
-- maximum) are sent; `limit` is not: it stops the iteration after that many records. A page that
-- fails ends the loop by raising the @{sigmamind.err|error object} itself, so `pcall` around the
-- loop gets the typed table.
-- @module sigmamind.pager
local core = require "sigmamind.core"
local describe = require "sigmamind.describe"
local error, type, pairs, next, setmetatable, tostring, load, pcall, _VERSION =
      error, type, pairs, next, setmetatable, tostring, load, pcall, _VERSION
local table_remove = table.remove
local string_format = string.format
local null = core.null

local _M = {}

local DEFAULT_SIZE = 100   -- the sandbox and the real API cap a page at 100 records

-- Lua 5.4.4 (Debian 12's) miscompiles a `break` out of a generic for with a to-be-closed value
-- when the body makes a closure of a loop variable: the next call after the loop fails ("attempt
-- to call a nil value"). A prefetching loop would hand it its closing value, and a loop body that
-- spawns a task per record is just that shape. This probe, the bug's own shape, tells whether this
-- interpreter has it; then the loops get no closing value, and what a loop left early started is
-- abandoned when its iterator is collected instead.
local CLOSING_OK = true
if _VERSION == "Lua 5.4" then
  local probe = load([[
    local function gen()
      local i = 0
      return function() i = i + 1; return i end, nil, nil, setmetatable({}, { __close = function() end })
    end
    local keep = {}
    for v in gen() do
      if v == 1 then keep[#keep + 1] = function() return v end end
      if v == 2 then break end
    end
    return tostring("ok")
  ]], "=sigmamind.pager.probe", "t", { setmetatable = setmetatable, tostring = tostring })
  local ok, got = pcall(probe)
  CLOSING_OK = ok and got == "ok"
end
_M.closing_values = CLOSING_OK

local function copy(t)
  local c = {}
  if t then for k, v in pairs(t) do c[k] = v end end
  return c
end

-- A decoded JSON value in words, for the errors about a response of the wrong shape. The decoder
-- makes `[]` and `{}` the same empty table, and a success with no body is `true`.
function _M.json_shape(v)
  if v == null then return "null" end
  if v == true then return "no body" end
  local t = type(v)
  if t == "table" then
    if next(v) == nil then return "an empty object or array" end
    return v[1] ~= nil and "an array" or "an object"
  end
  if t == "boolean" then return "false" end
  return "a " .. t
end
local json_shape = _M.json_shape

-- a record: a JSON object with something in it (`{}` cannot be told from `[]`)
function _M.is_record(v)
  return type(v) == "table" and v[1] == nil and next(v) ~= nil
end

-- the page fields paging reads, and the types they must have when present (a null counts as absent)
local PAGE_FIELDS = { hasNext = "boolean", hasPrevious = "boolean", page = "number", size = "number",
                      totalPages = "number", totalCount = "number", totalCounts = "number" }

--- Give a page the one shape every list has: `data` (an array, wrapping an endpoint that answers
-- with a bare array), and `totalCount` and `totalCounts` both set (counted when the last page says
-- there is no next). Anything else is not a page: not a JSON object or array, a `data` that is not
-- an array of objects, or a paging field of the wrong type.
-- @tparam table page a decoded list response; it is changed in place
-- @treturn[1] table the page
-- @return[2] nil, and what is wrong with it, in words
function _M.normalise_page(page)
  if type(page) ~= "table" then
    return nil, "expected a JSON object with a data array, got " .. json_shape(page)
  end
  if page[1] ~= nil and page.data == nil then
    -- some endpoints answer with a bare array: wrap it like a one-page list
    page = { data = page, page = 0, size = #page, totalPages = 1, hasNext = false, hasPrevious = false }
  end
  local data = page.data
  if data == nil then
    data = {}
    page.data = data
  elseif type(data) ~= "table" or (data[1] == nil and next(data) ~= nil) then
    return nil, "data: expected an array, got " .. json_shape(data)
  end
  for i = 1, #data do
    local r = data[i]
    if type(r) ~= "table" or r[1] ~= nil or next(r) == nil then   -- is_record, inlined: 100 a page
      return nil, string_format("data[%d]: expected an object, got %s", i, json_shape(r))
    end
  end
  for name, want in pairs(PAGE_FIELDS) do
    local v = page[name]
    if v ~= nil and v ~= null and type(v) ~= want then
      return nil, string_format("%s: expected a %s, got %s", name, want, json_shape(v))
    end
  end
  local total = page.totalCount or page.totalCounts
  if total == nil and page.hasNext == false then total = #data end
  page.totalCount, page.totalCounts = total, total
  return page
end

local function has_next(page, size)
  local hn = page.hasNext
  if type(hn) == "boolean" then return hn end
  local n, pages = page.page, page.totalPages
  if type(n) == "number" and type(pages) == "number" then return n + 1 < pages end
  return #page.data >= size
end

-- A newest-first list shifts while it is read (new calls push old ones onto the next page), so a
-- record of the page before may come again at the start of a page. Such records can only be the
-- first ones of a page, and only when its first record was on the page before: the ids of the page
-- before are kept (as a list, not its records), and a page costs one look through them for its
-- first id unless the list did shift.

-- the ids of a page's records, in order
local function ids_of(data, id_field)
  local ids = {}
  for j = 1, #data do
    local r = data[j]
    ids[j] = type(r) == "table" and r[id_field] or false
  end
  return ids
end

-- the set of `ids` when `id` is one of them; else nil
local function overlap(ids, id)
  local found = false
  for j = #ids, 1, -1 do
    if ids[j] == id then found = true break end
  end
  if not found then return nil end
  local set = {}
  for j = 1, #ids do
    if ids[j] then set[ids[j]] = true end
  end
  return set
end

-- A page of records all read already comes once when a page's worth of calls was made between two
-- requests; twice in a row, the server ignores `page`, and paging on would never end (nor reach a
-- `limit`: no record is new).
local REPEATS = 2

-- fetch(query) -> page | nil, err; errors while iterating are raised as the error object itself, so
-- `pcall` around a loop gets the typed error table. Each step returns a page and, with an
-- `id_field`, the set of the ids of the page before when this page starts with one of them (else
-- nil): the records to skip.
--
-- With `prefetch` in the query and a `start` (start(query) -> a waiter: waiter() -> page | nil,
-- err; waiter(true) abandons it; or nil when nothing can be started here, and pages come when asked
-- for; the client's is transfers.prefetch), pages are started before the loop asks for them: each
-- page returned has the next one started, and while a started page is waited for (received and
-- decoded), the one after it is started too when the last page seen says it exists and no `limit`
-- is set. So the server works on one page while this client decodes another. The third value is
-- for a generic for's closing slot (Lua 5.4): it abandons the pages started for a loop left early.
local function page_iterator(fetch, query, start, id_field, path, what)
  local q = copy(query)
  local limit, prefetch = q.limit, q.prefetch
  q.limit, q.prefetch = nil, nil
  if limit ~= nil and (type(limit) ~= "number" or limit ~= limit or limit < 0) then
    error(string_format("sigmamind: %s: limit: expected a number >= 0, got %s", what,
                        describe.value(limit)), 3)
  end
  if prefetch ~= nil and type(prefetch) ~= "boolean" then
    error(string_format("sigmamind: %s: prefetch: expected a boolean, got %s", what,
                        describe.value(prefetch)), 3)
  end
  q.size = q.size or DEFAULT_SIZE
  q.page = q.page or 0
  local done, total, pages_known = false, 0, nil
  -- the ids of the page before; pages in a row with no new record
  local ids_before, repeats = nil, 0
  local queue = {}             -- waiters of the pages started, for q.page, q.page + 1, ...
  local closer
  local function drop()
    for i = #queue, 1, -1 do queue[i](true); queue[i] = nil end
  end
  if prefetch and start then
    -- collected: only forget them (a finalizer may run inside the client's own calls, so no
    -- transfer is touched there; their answers, when they come, go to nobody and are dropped)
    local function forget()
      for i = #queue, 1, -1 do queue[i](true, true); queue[i] = nil end
    end
    closer = setmetatable({}, { __close = drop, __gc = forget })
  end
  local function start_page(n)
    local sq = copy(q)
    sq.page = n
    queue[#queue + 1] = start(sq)
  end
  return function()
    if done then return nil end
    local page, err
    local wait = queue[1]
    if wait then
      table_remove(queue, 1)
      local after = q.page + #queue + 1
      if closer and not limit and pages_known and after < pages_known then start_page(after) end
      page, err = wait()
    else
      page, err = fetch(q)
    end
    if not page then
      done = true
      drop()
      error(err, 0)
    end
    local data = page.data
    if not has_next(page, q.size) or #data == 0 then done = true end
    local skip
    if id_field then
      local ids = ids_of(data, id_field)
      local first = ids[1]
      if ids_before and first then skip = overlap(ids_before, first) end
      local new = skip == nil
      for j = 2, skip and #ids or 0 do
        if not (ids[j] and skip[ids[j]]) then new = true break end
      end
      repeats = new and 0 or repeats + 1
      ids_before = ids
      if repeats >= REPEATS and not done then
        done = true
        drop()
        error(core.error{ kind = "decode", sent = true, retryable = false, method = "GET", path = path,
          message = string_format("the server repeated page %d as pages %d and %d (no record on them was new, " ..
                                  "yet each said a next page follows): it ignores paging, so the list was " ..
                                  "left there", q.page - REPEATS, q.page - 1, q.page) }, 0)
      end
    end
    q.page = q.page + 1
    total = total + #data
    pages_known = type(page.totalPages) == "number" and page.totalPages or nil
    if done then
      drop()
    elseif closer and #queue == 0 and (not limit or total < limit) then
      start_page(q.page)
      if not queue[1] then closer = nil end   -- nothing can be started here: plain paging from now
    end
    return page, skip
  end, limit, CLOSING_OK and closer or nil     -- else the iterator's upvalue keeps it, for its __gc
end

--- Every page of a list, one request per step, until a page says there is no next one or comes back
-- empty, or the server is seen to answer every page alike.
-- @tparam function fetch `fetch(query)` returns a page, or `nil, err`
-- @tparam[opt] table query sent with `page` counted up from `query.page`; `limit` stops once that
-- many records were returned; `prefetch = true` has each page but the last start the next before it
-- is returned
-- @tparam[opt] function start `start(query)` starts a page early and returns its waiter, or nil
-- @string[opt] id_field the field that identifies a record, e.g. `"callId"`: with it, a server that
-- ignores `page` is seen, by two pages in a row that bring no new record
-- @string[opt] path the list's path, e.g. `"/v1/calls"`, for the error that ends such a loop
-- @string[opt="pages"] what the caller's name in misuse errors, e.g. `"calls:pages"`
-- @treturn function an iterator of pages (then two nils and a closing value that abandons a started
-- page)
-- @raise when `limit` is not a number >= 0; while iterating, the `err` of a failed fetch, or a
-- `decode` error when the server ignores `page`
function _M.pages(fetch, query, start, id_field, path, what)
  local it, limit, closer = page_iterator(fetch, query, start, id_field, path, what or "pages")
  local seen = 0
  return function()
    if limit and seen >= limit then return nil end
    local page = it()
    if page then seen = seen + #page.data end
    return page
  end, nil, nil, closer
end

--- Every record of a list, one at a time, with one page in memory. A record whose `id_field` was
-- yielded on the page before is skipped, so a list that shifts while it is read yields no record
-- twice. Pages are numbered, so deleting records of the list inside the loop moves later ones onto
-- pages already read, and they are never yielded: collect the ids first, then delete (see
-- @{sigmamind.calls:each}).
-- @tparam function fetch `fetch(query)` returns a page, or `nil, err`
-- @tparam[opt] table query as for @{pages}; `limit` caps the number of records
-- @string[opt] id_field the field that identifies a record, e.g. `"callId"`
-- @tparam[opt] function start as for @{pages}
-- @string[opt] path as for @{pages}
-- @string[opt="each"] what the caller's name in misuse errors, e.g. `"calls:each"`
-- @treturn function an iterator of records (then two nils and a closing value, as for @{pages})
-- @raise as @{pages}
function _M.each(fetch, query, id_field, start, path, what)
  local it, limit, closer = page_iterator(fetch, query, start, id_field, path, what or "each")
  local data, i, n = nil, 0, 0
  local skip              -- the ids of the page before, while this page starts with one of them
  return function()
    while true do
      if limit and n >= limit then return nil end
      if data then
        i = i + 1
        local rec = data[i]
        if rec == nil then
          data = nil
        elseif not skip then
          n = n + 1
          return rec
        else
          local id = type(rec) == "table" and rec[id_field]
          if id == nil or not skip[id] then
            n = n + 1
            return rec
          end
        end
      else
        local page
        page, skip = it()
        if not page then return nil end
        data, i = page.data, 0
      end
    end
  end, nil, nil, closer
end

return setmetatable(_M, { __newindex = function() error("sigmamind.pager is read-only", 2) end })
