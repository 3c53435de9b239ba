import ArgumentParser

extension LTCtl {
    struct Export: ParsableCommand {
        func run() throws {}
    }
}
