-- Pagination over SigmaMind's page-numbered lists: lazy, bounded iterators that hold one page at a time.

--- Pagination: the iterators behind every namespace's `each` and `pages` (e.g. @{sigmamind.calls:each}).
-- A query's `page` (default 0) and `size` (default 100, the API's maximum) are sent; `limit` is not: it stops
-- the iteration after that many records. A page that fails ends the loop by raising the @{sigmamind.err|error
-- object} itself, so `pcall` around the loop gets the typed table.
-- @module sigmamind.pager
local error, type, pairs, setmetatable = error, type, pairs, setmetatable

local _M = {}

local DEFAULT_SIZE = 100   -- the sandbox and the real API cap a page at 100 records

local function copy(t)
  local c = {}
  if t then for k, v in pairs(t) do c[k] = v end end
  return c
end

-- Reads both spellings of the total so callers never need to know which endpoint says which.

--- Give a page the one shape every list has: `data` (an array, wrapping an endpoint that answers with a bare
-- array), and `totalCount` and `totalCounts` both set (counted when the last page says there is no next).
-- @tparam table page a decoded list response; it is changed in place
-- @treturn table the page
function _M.normalise_page(page)
  if type(page) ~= "table" then return page end
  if page[1] ~= nil and page.data == nil then
    -- some endpoints answer with a bare array: wrap it like a one-page list
    page = { data = page, page = 0, size = #page, totalPages = 1, hasNext = false, hasPrevious = false }
  end
  page.data = page.data or {}
  local total = page.totalCount or page.totalCounts
  if total == nil and page.hasNext == false then total = #page.data end
  page.totalCount, page.totalCounts = total, total
  return page
end

local function has_next(page, size)
  if page.hasNext ~= nil then return page.hasNext == true end
  if page.totalPages and page.page then return page.page + 1 < page.totalPages end
  return #page.data >= size
end

-- fetch(query) -> page | nil, err; errors while iterating are raised as the error object itself,
-- so `pcall` around a loop gets the typed error table.
local function page_iterator(fetch, query)
  local q = copy(query)
  local limit = q.limit
  q.limit = nil
  if limit ~= nil and (type(limit) ~= "number" or limit < 0) then
    error("limit: expected a non-negative number, got " .. tostring(limit), 3)
  end
  q.size = q.size or DEFAULT_SIZE
  q.page = q.page or 0
  local done = false
  return function()
    if done then return nil end
    local page, err = fetch(q)
    if not page then done = true; error(err, 0) end
    if not has_next(page, q.size) or #page.data == 0 then done = true end
    q.page = q.page + 1
    return page
  end, limit
end

--- Every page of a list, one request per step, until a page says there is no next one or comes back empty.
-- @tparam function fetch `fetch(query)` returns a page, or `nil, err`
-- @tparam[opt] table query sent with `page` counted up from `query.page`; `limit` stops once that many records
-- were returned
-- @treturn function an iterator of pages
-- @raise when `limit` is not a number >= 0; while iterating, the `err` of a failed fetch
function _M.pages(fetch, query)
  local it, limit = page_iterator(fetch, query)
  if not limit then return it end
  local seen = 0
  return function()
    if seen >= limit then return nil end
    local page = it()
    if page then seen = seen + #page.data end
    return page
  end
end

-- Records one by one. A newest-first list shifts while it is read (new calls push old ones onto the next
-- page), so a record already yielded on the previous page is skipped rather than yielded twice. Such records
-- can only be the first ones of a page, and only when its first record was on the page before: the ids of the
-- page before are kept (as a list, not its records), and a page costs one look through them for its first id
-- unless the list did shift.

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

--- Every record of a list, one at a time, with one page in memory. A record whose `id_field` was yielded on
-- the page before is skipped, so a list that shifts while it is read yields no record twice.
-- @tparam function fetch `fetch(query)` returns a page, or `nil, err`
-- @tparam[opt] table query as for @{pages}; `limit` caps the number of records
-- @string[opt] id_field the field that identifies a record, e.g. `"callId"`
-- @treturn function an iterator of records
-- @raise when `limit` is not a number >= 0; while iterating, the `err` of a failed fetch
function _M.each(fetch, query, id_field)
  local it, limit = page_iterator(fetch, query)
  local data, i, n = nil, 0, 0
  local ids_before        -- the ids of the page before (with an id_field)
  local skip              -- their set, while this page starts with one of them
  return function()
    while true do
      if limit and n >= limit then return nil end
      if data then
        i = i + 1
        local rec = data[i]
        if rec == nil then
          if id_field then ids_before = ids_of(data, id_field) end
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
        local page = it()
        if not page then return nil end
        data, i, skip = page.data, 0, nil
        local first = data[1]
        local id = ids_before and type(first) == "table" and first[id_field]
        if id ~= nil and id ~= false then skip = overlap(ids_before, id) end
        ids_before = nil
      end
    end
  end
end

return setmetatable(_M, { __newindex = function() error("sigmamind.pager is read-only", 2) end })
