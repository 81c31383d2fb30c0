package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func getCommand() *cli.Command {
	return &cli.Command{
		Name:      "get",
		Usage:     "print the value of a key in the local store",
		ArgsUsage: "KEY",
		Description: "Opens the store in --dir from its local state (the remote is not touched), prints\n" +
			"the value and closes it: no restore, no snapshot. A value that is not printable text\n" +
			"is printed as hex:DIGITS; an absent key prints (absent). KEY may be given as hex:DIGITS.",
		Action: runGet,
	}
}

// getJSON is the output of "tierkv get --json".
type getJSON struct {
	Key   string `json:"key"`
	Found bool   `json:"found"`
	Value string `json:"value,omitempty"`
}

func runGet(c *cli.Context) (err error) {
	if c.NArg() != 1 {
		return usagef("get takes one argument, KEY: e.g. 'tierkv --dir D get user-42'")
	}
	key, err := decodeToken(c.Args().First())
	if err != nil {
		return usagef("%v", err)
	}
	g, err := loadGlobals(c)
	if err != nil {
		return err
	}
	s, err := openLocal(c, g, false, true)
	if err != nil {
		return err
	}
	defer closeLocal(s, &err)
	v, found, err := s.Get(key)
	if err != nil {
		return fmt.Errorf("get %s: %w", displayValue(key), err)
	}
	if g.json {
		out := getJSON{Key: displayValue(key), Found: found}
		if found {
			out.Value = displayValue(v)
		}
		return writeJSON(c.App.Writer, out)
	}
	if !found {
		fmt.Fprintln(c.App.Writer, absentText)
		return nil
	}
	fmt.Fprintln(c.App.Writer, displayValue(v))
	return nil
}
