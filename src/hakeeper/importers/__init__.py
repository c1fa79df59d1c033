"""Importers: configurations written for other cluster managers → hakeeper's native spec.

`crm` reads crm shell's `configure show` syntax, `cib` reads Pacemaker's CIB XML including its
status section. Both keep the meaning of the input or refuse it with an error naming the line.
"""
