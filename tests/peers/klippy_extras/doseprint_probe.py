"""A test-only Klipper ``extras`` module: what Klipper's own planner does with a doseprint job.

Never part of doseprint. ``tests/peers/klipper.py`` copies it into a temporary copy of
Klipper's host as ``klippy/extras/doseprint_probe.py`` and enables it with a
``[doseprint_probe]`` section in the generated ``printer.cfg``. It runs inside klippy, so it
uses only what klippy gives every extras module (``config.get_printer()``, event handlers,
``register_command``) and touches objects by the names klippy gives them.

It does four things:

* ``DOSEPRINT_SECTION TABLET=<i>|NONE`` (the harness puts one in place of every
  ``;TABLET:`` marker line) sets the section the following moves belong to.
* Every move the toolhead accepts is tagged with the current section and the active
  extruder when the extruder checks it (``check_move``, called only for moves that feed
  filament), and its filament is counted when the planner hands it to the extruder's
  motion queue (``process_move``). The E distance the G-code layer asked the toolhead for
  is counted too, per section and extruder, so a move that Klipper accepted but never
  planned shows up as a difference, not as a silent loss.
* Batch mode never reads a thermistor and lets every extrusion through. Here each heater
  is taken to reach its target at once (less ``temperature_dip`` degrees, a heater that
  runs a little cold while printing), and Klipper's own ``min_extrude_temp`` check
  ("Extrude below minimum temp") then decides on that temperature.
* Every response klippy sends (``// …`` and ``!! …`` lines) is written to ``responses``;
  at exit the counts go to ``results`` as JSON.
"""

import json


class DoseprintProbe:
    def __init__(self, config):
        self.printer = config.get_printer()
        self.results_path = config.get("results")
        self.dip_c = config.getfloat("temperature_dip", 0.0, minval=0.0)
        self.responses = open(config.get("responses"), "w")
        self.section = None
        self.sections = 0
        self.commanded = {}
        self.planned = {}
        self.untagged = 0
        self.moves = 0
        self.motion_s = 0.0
        self.homing_s = 0.0
        self.homing = False
        self.first_move_s = None
        self.last_move_end_s = 0.0
        gcode = self.printer.lookup_object("gcode")
        gcode.register_command("DOSEPRINT_SECTION", self.cmd_DOSEPRINT_SECTION)
        gcode.register_output_handler(self._respond)
        self.printer.register_event_handler("klippy:connect", self._connect)
        self.printer.register_event_handler("klippy:disconnect", self._write)
        self.printer.register_event_handler("homing:home_rails_begin", self._home_begin)
        self.printer.register_event_handler("homing:home_rails_end", self._home_end)

    # Sections

    def cmd_DOSEPRINT_SECTION(self, gcmd):
        value = gcmd.get("TABLET")
        if value == "NONE":
            self.section = None
        else:
            self.section = int(value)
        self.sections += 1

    # Responses

    def _respond(self, msg):
        self.responses.write(msg + "\n")
        self.responses.flush()

    # Hooks, installed once every object exists (klippy:connect comes before
    # klippy:ready, when gcode_move looks up the toolhead's move method).

    def _connect(self):
        toolhead = self.printer.lookup_object("toolhead")
        self._hook_toolhead(toolhead)
        for i in range(99):
            name = f"extruder{i}" if i else "extruder"
            extruder = self.printer.lookup_object(name, None)
            if extruder is None:
                break
            self._hook_extruder(extruder)
        heaters = self.printer.lookup_object("heaters")
        for heater in heaters.heaters.values():
            self._hook_heater(heater)

    def _add(self, table, key, mm):
        table[key] = table.get(key, 0.0) + mm

    def _hook_toolhead(self, toolhead):
        move = toolhead.move
        append = toolhead.trapq_append

        def counted_move(newpos, speed):
            name = toolhead.get_extruder().get_name()
            before = toolhead.commanded_pos[3]
            move(newpos, speed)
            if newpos[3] != before:
                self._add(self.commanded, (self.section, name), newpos[3] - before)

        def timed_append(trapq, print_time, accel_t, cruise_t, decel_t, *rest):
            self._time(print_time, accel_t + cruise_t + decel_t)
            return append(trapq, print_time, accel_t, cruise_t, decel_t, *rest)

        toolhead.move = counted_move
        toolhead.trapq_append = timed_append

    def _home_begin(self, homing_state, rails):
        self.homing = True

    def _home_end(self, homing_state, rails):
        self.homing = False

    def _time(self, print_time, duration):
        if self.homing:
            # Batch mode homes over the whole axis (no endstop ever triggers): kept apart.
            self.homing_s += duration
            return
        self.moves += 1
        self.motion_s += duration
        if self.first_move_s is None:
            self.first_move_s = print_time
        self.last_move_end_s = max(self.last_move_end_s, print_time + duration)

    def _hook_extruder(self, extruder):
        check = extruder.check_move
        process = extruder.process_move
        name = extruder.get_name()

        def tagged_check(move, ea_index):
            check(move, ea_index)
            move.doseprint_key = (self.section, name)

        def counted_process(print_time, move, ea_index):
            process(print_time, move, ea_index)
            key = getattr(move, "doseprint_key", None)
            if key is None or key[1] != name:
                self.untagged += 1
                key = ("untagged", name)
            self._add(self.planned, key, move.axes_d[ea_index])
            if not move.is_kinematic_move:
                self._time(print_time, move.accel_t + move.cruise_t + move.decel_t)

        extruder.check_move = tagged_check
        extruder.process_move = counted_process

    def _hook_heater(self, heater):
        set_temp = heater.set_temp
        dip_c = self.dip_c

        def reached_at_once(degrees):
            set_temp(degrees)
            temp = max(0.0, degrees - dip_c) if degrees else 0.0
            with heater.lock:
                heater.last_temp = heater.smoothed_temp = temp
                heater.can_extrude = (heater.min_extrude_temp <= 0.0
                                      or temp >= heater.min_extrude_temp)

        heater.set_temp = reached_at_once
        with heater.lock:
            heater.can_extrude = heater.min_extrude_temp <= 0.0

    # Results

    def _write(self):
        def rows(table):
            return [[section, name, mm] for (section, name), mm in sorted(
                table.items(), key=lambda item: (str(item[0][0]), item[0][1]))]

        toolhead = self.printer.lookup_object("toolhead", None)
        results = {
            "sections": self.sections,
            "commanded_mm": rows(self.commanded),
            "planned_mm": rows(self.planned),
            "untagged_moves": self.untagged,
            "moves": self.moves,
            "motion_s": self.motion_s,
            "homing_s": self.homing_s,
            "first_move_s": self.first_move_s,
            "last_move_end_s": self.last_move_end_s,
            "print_time_s": None if toolhead is None else toolhead.print_time,
        }
        with open(self.results_path, "w") as out:
            json.dump(results, out)
        self.responses.close()


def load_config(config):
    return DoseprintProbe(config)
