-- Pagination over SigmaMind's page-numbered lists: lazy, bounded iterators that hold one page at a time.
local error, type, pairs, next, setmetatable = error, type, pairs, next, setmetatable

local _M = {}

local DEFAULT_SIZE = 100   -- the sandbox and the real API cap a page at 100 records

local function copy(t)
  local c = {}
  if t then for k, v in pairs(t) do c[k] = v end end
  return c
end

-- Reads both spellings of the total so callers never need to know which endpoint says which.
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
-- page), so a record already yielded on the previous page is skipped rather than yielded twice.
function _M.each(fetch, query, id_field)
  local it, limit = page_iterator(fetch, query)
  local data, i, n = nil, 0, 0
  local prev_ids, cur_ids = {}, {}
  return function()
    while true do
      if limit and n >= limit then return nil end
      if data then
        i = i + 1
        local rec = data[i]
        if rec ~= nil then
          local id = id_field and type(rec) == "table" and rec[id_field]
          if id == nil or not prev_ids[id] then
            if id ~= nil then cur_ids[id] = true end
            n = n + 1
            return rec
          end
        else
          data = nil
        end
      else
        local page = it()
        if not page then return nil end
        data, i = page.data, 0
        if next(cur_ids) ~= nil then prev_ids, cur_ids = cur_ids, {} end
      end
    end
  end
end

return setmetatable(_M, { __newindex = function() error("sigmamind.pager is read-only", 2) end })
