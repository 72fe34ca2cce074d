-- rramlab TSP object model helpers (Lua 5.1).
-- The instrument's objects are plain Lua tables. Attribute reads and writes that reach the
-- instrument go through metatables to four Python callables bound once here; no Python object is
-- ever indexed from Lua (lupa 2.x on Lua 5.1 resolves userdata to the wrong object after some hundred chunks).
local PY_GET, PY_SET, PY_CALL, PY_PRINT = ...
local setmetatable, rawget, rawset, error, select, type = setmetatable, rawget, rawset, error, select, type
local unpack = unpack

-- A node: a table whose unknown keys are attributes held by the instrument (Python side).
function __rr_node(path, members)
  local t = members or {}
  rawset(t, "__path", path)
  return setmetatable(t, {
    __index = function(_, k)
      local ok, v = PY_GET(path, k)
      if not ok then error(v, 2) end
      return v
    end,
    __newindex = function(_, k, v)
      if type(v) == "table" then v = rawget(v, "__path") or __rr_list(v) end
      local err = PY_SET(path, k, v)
      if err then error(err, 2) end
    end,
  })
end

-- Lua list table -> comma-joined string of numbers (for listv-style arguments).
function __rr_list(t)
  local parts = {}
  for i = 1, #t do
    local v = t[i]
    parts[i] = type(v) == "number" and string.format("%.17g", v) or tostring(v)
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- Argument marshalling: tables become their node path or a list literal; nothing else crosses.
local function marshal(...)
  local n = select("#", ...)
  local args = {...}
  for i = 1, n do
    local a = args[i]
    if type(a) == "table" then args[i] = rawget(a, "__path") or __rr_list(a) end
  end
  return n, args
end

local function finish(ok, ...)
  if ok ~= true then error((...), 3) end
  return ...
end

-- A function implemented by the instrument (explicit nil results are preserved).
function __rr_fn(name)
  return function(...)
    local n, args = marshal(...)
    return finish(PY_CALL(name, n, unpack(args, 1, n)))
  end
end

-- print(): numbers, strings, booleans and nil as the instrument formats them; anything else
-- (tables, functions, instrument objects) as Lua's tostring gives it ("table: 0x...").
local tostring = tostring
print = function(...)
  local n = select("#", ...)
  local args = {...}
  for i = 1, n do
    local t = type(args[i])
    if t ~= "number" and t ~= "string" and t ~= "boolean" and t ~= "nil" then args[i] = tostring(args[i]) end
  end
  PY_PRINT(n, unpack(args, 1, n))
end
