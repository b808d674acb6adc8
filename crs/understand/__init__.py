"""Understanding a message: the title and person index, references to what was shown, the
learned reader of dialogue acts and mention polarity, and the rules kept where exactness matters."""
