import LTEngine

extension Reply {
    /// Batches show at most this many rows in an explanation; `batch_size` always gives the whole count.
    public static let maxExplainedRows = 1000

    /// `{"type":"explanation","job":…,"iteration":N,…}`: the engine's working of one step, every value named, in the
    /// job's precision (docs/PROTOCOL.md, "explain").
    public static func explanation(id: JSONValue?, job: String, iteration: Int, working: Working) -> [UInt8] {
        let precision: Precision
        switch working {
        case .initial(let i): precision = i.precision
        case .step(let s): precision = s.precision
        }
        var w = JSONWriter(precision: precision, capacity: 4096)
        w.beginObject()
        w.key("type"); w.rawString("explanation")
        if let id { w.key("id"); w.value(id) }
        w.field("job", job)
        w.field("iteration", iteration)
        w.field("precision", precision.rawValue)
        switch working {
        case .initial(let i): initial(&w, i)
        case .step(let s): step(&w, s)
        }
        w.endObject()
        w.newline()
        return w.bytes
    }

    private static func initial(_ w: inout JSONWriter, _ i: InitialWorking) {
        w.key("initial"); w.beginObject()
        w.field("w", i.w)
        w.field("b", i.b)
        w.field("initializer", i.origin.initializer)
        if let seed = i.origin.seed { w.key("seed"); w.integer(seed) }
        if let seed = i.origin.initializerSeed { w.key("initializer_seed"); w.integer(seed) }
        if let limit = i.origin.limit { w.field("limit", limit) }
        if let u = i.origin.unitUniform { w.field("unit_uniform", u) }
        w.key("given"); namedValues(&w, i.given)
        w.key("lines"); lines(&w, i.lines)
        w.key("slots"); w.beginObject()
        w.key("kernel"); namedValues(&w, zip(i.slots.names, [i.slots.kernel.0, i.slots.kernel.1, i.slots.kernel.2]).map { NamedValue($0, $1) })
        w.key("bias"); namedValues(&w, zip(i.slots.names, [i.slots.bias.0, i.slots.bias.1, i.slots.bias.2]).map { NamedValue($0, $1) })
        w.endObject()
        w.key("optimum"); w.optimum(i.optimum)
        w.endObject()
    }

    private static func step(_ w: inout JSONWriter, _ s: StepWorking) {
        w.field("epoch", s.epoch)
        w.field("step", s.step)
        w.field("steps_per_epoch", s.stepsPerEpoch)
        w.field("optimizer", s.optimizer.rawValue)
        w.field("batch_size", s.batchSize)
        w.key("rows"); w.beginArray()
        for r in s.rows.prefix(maxExplainedRows) {
            w.beginObject()
            w.field("row", r.row)
            w.field("x", r.x)
            w.field("y", r.y)
            w.field("prediction", r.prediction)
            w.field("error", r.error)
            w.field("squared_error", r.squaredError)
            w.field("gradient_part", r.gradientPart)
            w.field("grad_w_so_far", r.gradWSoFar)
            w.endObject()
        }
        w.endArray()
        w.field("scale", s.scale)
        w.field("squared_error_sum", s.squaredErrorSum)
        w.field("batch_loss", s.batchLoss)
        w.field("grad_w", s.gradW)
        w.field("grad_b", s.gradB)
        w.key("hyper_parameters"); namedValues(&w, s.hyperParameters)
        w.key("shared"); lines(&w, s.shared)
        w.key("kernel"); variable(&w, s.kernel)
        w.key("bias"); variable(&w, s.bias)
        w.field("w_before", s.kernel.before)
        w.field("b_before", s.bias.before)
        w.field("w_after", s.kernel.after)
        w.field("b_after", s.bias.after)
    }

    private static func variable(_ w: inout JSONWriter, _ v: VariableWorking) {
        w.beginObject()
        w.field("symbol", v.symbol)
        w.field("gradient", v.gradientName)
        w.field("before", v.before)
        w.field("grad", v.gradient)
        w.key("slots_before"); namedValues(&w, v.slotsBefore)
        w.key("lines"); lines(&w, v.lines)
        w.key("slots_after"); namedValues(&w, v.slotsAfter)
        w.field("after", v.after)
        w.endObject()
    }

    private static func lines(_ w: inout JSONWriter, _ lines: [WorkingLine]) {
        w.beginArray()
        for line in lines {
            w.beginObject()
            w.field("name", line.name)
            w.field("formula", line.formula)
            w.field("value", line.value)
            w.key("operations"); w.beginArray()
            for operation in line.operations {
                w.beginObject()
                w.field("operator", operation.operator)
                w.key("operands"); w.numbers(operation.operands)
                w.field("value", operation.value)
                w.endObject()
            }
            w.endArray()
            w.endObject()
        }
        w.endArray()
    }

    private static func namedValues(_ w: inout JSONWriter, _ values: [NamedValue]) {
        w.beginObject()
        for v in values { w.key(v.name); w.number(v.value) }
        w.endObject()
    }
}
