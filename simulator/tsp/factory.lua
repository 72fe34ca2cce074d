-- rramlab: the 2600B KISweep / KIPulse factory-script functions the manual documents, written as Lua over
-- the emulated object model (Series 2600B Reference Manual 2600BS-901-01 Rev F, section 9,
-- SweepVLinMeasureI() … PulseIMeasureV()) [M]. Data go to smuX.nvbuffer1: readings, source values and
-- timestamps [M]. What the factory code does around the sweep (settings restored, output state
-- after the sweep) is not published: here settings are kept, the source returns to the level it had
-- before the call and the output to its previous state [U].

local function _sweep(smu, func, levels_fn, stime, points)
  smu = smu or smua
  if points == nil or points < 2 then error("points must be >= 2", 3) end   -- [U] text
  local out, lv, li, delay = smu.source.output, smu.source.levelv, smu.source.leveli, smu.source.delay
  smu.source.func = func
  smu.source.delay = stime or 0
  smu.nvbuffer1.clear()
  smu.nvbuffer1.collectsourcevalues = 1
  smu.nvbuffer1.collecttimestamps = 1
  levels_fn(smu)
  smu.trigger.source.action = smu.ENABLE
  smu.trigger.measure.action = smu.ENABLE
  if func == smu.OUTPUT_DCVOLTS then smu.trigger.measure.i(smu.nvbuffer1) else smu.trigger.measure.v(smu.nvbuffer1) end
  smu.trigger.endpulse.action = smu.SOURCE_HOLD
  smu.trigger.endsweep.action = smu.SOURCE_IDLE
  smu.trigger.count = points
  smu.trigger.arm.count = 1
  smu.source.output = smu.OUTPUT_ON
  smu.trigger.initiate()
  waitcomplete()
  smu.source.delay = delay
  smu.source.levelv = lv
  smu.source.leveli = li
  smu.source.output = out
end

function SweepVLinMeasureI(smu, startv, stopv, stime, points)
  _sweep(smu, (smu or smua).OUTPUT_DCVOLTS, function(s) s.trigger.source.linearv(startv, stopv, points) end, stime, points)
end

function SweepILinMeasureV(smu, starti, stopi, stime, points)
  _sweep(smu, (smu or smua).OUTPUT_DCAMPS, function(s) s.trigger.source.lineari(starti, stopi, points) end, stime, points)
end

function SweepVListMeasureI(smu, vlist, stime, points)
  _sweep(smu, (smu or smua).OUTPUT_DCVOLTS, function(s) s.trigger.source.listv(vlist) end, stime, points)
end

function SweepIListMeasureV(smu, ilist, stime, points)
  _sweep(smu, (smu or smua).OUTPUT_DCAMPS, function(s) s.trigger.source.listi(ilist) end, stime, points)
end

-- PulseVMeasureI(smu, bias, level, ton, toff, points) [M]: bias for toff; then per point level for ton,
-- measure current at level, back to bias for toff. The output is left on at the bias level [U].
local function _pulse(smu, volts, bias, level, ton, toff, points)
  smu = smu or smua
  smu.nvbuffer1.clear()
  smu.nvbuffer1.collectsourcevalues = 1
  smu.nvbuffer1.collecttimestamps = 1
  local set = function(x) if volts then smu.source.levelv = x else smu.source.leveli = x end end
  smu.source.func = volts and smu.OUTPUT_DCVOLTS or smu.OUTPUT_DCAMPS
  set(bias)
  smu.source.output = smu.OUTPUT_ON
  delay(toff)
  for _ = 1, points do
    set(level)
    delay(ton)
    if volts then smu.measure.i(smu.nvbuffer1) else smu.measure.v(smu.nvbuffer1) end
    set(bias)
    delay(toff)
  end
end

function PulseVMeasureI(smu, bias, level, ton, toff, points)
  _pulse(smu, true, bias, level, ton, toff, points)
end

function PulseIMeasureV(smu, bias, level, ton, toff, points)
  _pulse(smu, false, bias, level, ton, toff, points)
end
