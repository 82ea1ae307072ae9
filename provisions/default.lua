-- The built-in default as a file, so that "initial" can point at it:
-- every path answers 404 with a short guide to writing a provision.
-- Replace the initial symlink with your own initial.lua to serve yours.
require("h1mock.default")
