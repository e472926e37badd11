# Device entry point: load the board, build the door unit, run it forever.
# A provisioned unit never returns to the REPL: lockapp.serve() resets it on
# any unhandled error.
import lockapp

lockapp.main()
