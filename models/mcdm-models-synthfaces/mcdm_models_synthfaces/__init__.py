"""mcdm's shipped models as package data: ``synthfaces-32`` (the composition ``mcdm demo`` runs) and
``judges-32`` (what ``mcdm eval`` scores with). Nothing to import: ``mcdm.pretrained`` finds the folders
through this distribution's ``mcdm.pretrained`` entry point. In the repository both folders are links to
``pretrained/``; the wheel holds the files themselves.
"""
