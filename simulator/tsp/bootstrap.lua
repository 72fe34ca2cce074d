-- rramlab TSP object model helpers (Lua 5.1).
-- The instrument's objects are plain Lua tables. Attribute reads and writes that reach the
-- instrument go through metatables to five Python callables bound once here; no Python object is
-- ever indexed from Lua (lupa 2.x on Lua 5.1 resolves userdata to the wrong object after some hundred chunks).
local PY_GET, PY_SET, PY_CALL, PY_PRINT, PY_REMOTE = ...
local setmetatable, getmetatable, rawget, rawset, error, select, type = setmetatable, getmetatable, rawget, rawset,
  error, select, type
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

-- A script (scriptVar): the compiled chunk is its run member; calling the script runs it (2600B Reference
-- Manual, scriptVar.run(): "You can also run the script by using scriptVar()").
function __rr_script(node, chunk)
  rawset(node, "run", chunk)
  getmetatable(node).__call = function() return chunk() end
  return node
end

-- An iterator over the names a Python function returns newline-separated (for name in x.catalog() do … end).
function __rr_iter(fn)
  return function()
    local names, s, i = {}, fn(), 0
    for n in string.gmatch(s, "[^\n]+") do names[#names + 1] = n end
    return function() i = i + 1; return names[i] end
  end
end

-- Indexing and assignment with metamethods, for Python: called through lupa they run protected (an error in a
-- metamethod is a Lua error raised in Python, never an unprotected error).
function __rr_index(t, k) return t[k] end
function __rr_setindex(t, k, v) t[k] = v end

-- TSP-Link: node[N] of a remote node. Reads, writes and calls are executed by that node's engine
-- (Python side); results come back as values, or as proxies for that node's tables and functions.
local function remote_results(node, ok, ...)
  if ok ~= true then error((...), 3) end
  local raw = {...}
  local n, out = raw[1], {}
  for i = 1, n do
    local kind, v = raw[2 * i], raw[2 * i + 1]
    if kind == "p" then out[i] = __rr_remote(node, v) else out[i] = v end
  end
  return unpack(out, 1, n)
end

-- One proxy per (node, path), kept while referenced: a proxy holds nothing but its node and path.
local proxies = setmetatable({}, {__mode = "v"})

function __rr_remote(node, path)
  local key = node .. "|" .. path
  local t = proxies[key]
  if t ~= nil then return t end
  t = {}
  rawset(t, "__rnode", node)
  rawset(t, "__rpath", path)
  proxies[key] = t
  return setmetatable(t, {
    __index = function(_, k) return remote_results(node, PY_REMOTE("get", node, path, k)) end,
    __newindex = function(_, k, v)
      local ok, err = PY_REMOTE("set", node, path, k, v)
      if ok ~= true then error(err, 2) end
    end,
    __call = function(_, ...)
      return remote_results(node, PY_REMOTE("call", node, path, select("#", ...), ...))
    end,
  })
end

-- lupa looks up the global `debug` (removed here) without protection before each call into Lua: a metatable on
-- the global table whose __index fails would abort the whole process. The global table's metatable is therefore
-- protected: setmetatable(_G, …) fails as Lua fails for a protected metatable ("cannot change a protected
-- metatable"), a -286 run-time error; the instrument's own behaviour for it is not documented [U].
setmetatable(_G, {__metatable = false})
