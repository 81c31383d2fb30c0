package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func putCommand() *cli.Command {
	return &cli.Command{
		Name:      "put",
		Usage:     "set a key in the local store",
		ArgsUsage: "KEY VALUE",
		Description: "Opens the store in --dir from its local state (created if missing), sets KEY to\n" +
			"VALUE and closes it. The change is local until 'tierkv snapshot'. KEY and VALUE may be\n" +
			"given as hex:DIGITS; hex: alone is the empty value.",
		Action: runPut,
	}
}

func runPut(c *cli.Context) (err error) {
	if c.NArg() != 2 {
		return usagef("put takes two arguments, KEY VALUE (hex: alone is the empty value)")
	}
	key, err := decodeToken(c.Args().Get(0))
	if err != nil {
		return usagef("%v", err)
	}
	value, err := decodeToken(c.Args().Get(1))
	if err != nil {
		return usagef("%v", err)
	}
	g, err := loadGlobals(c)
	if err != nil {
		return err
	}
	s, err := openLocal(c, g, false, false)
	if err != nil {
		return err
	}
	defer closeLocal(s, &err)
	if err := s.Set(key, value); err != nil {
		return fmt.Errorf("put %s: %w", displayValue(key), err)
	}
	return nil
}
