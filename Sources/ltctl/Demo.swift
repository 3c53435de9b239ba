import ArgumentParser

extension LTCtl {
    struct Demo: ParsableCommand {
        func run() throws {}
    }
}
