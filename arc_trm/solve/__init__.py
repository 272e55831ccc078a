"""Stage 4: test-time training, augmented inference, inverse transforms, voting, submissions."""
